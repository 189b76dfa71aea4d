"""Split files read exactly as published: UCF-101, HMDB-51 and generic lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnvideo.data import (
    SplitFormatError,
    VideoRecord,
    read_class_index,
    read_hmdb51_split,
    read_ucf101_split,
    read_video_list,
)

# The first lines of the published ucfTrainTestlist files, byte for byte (CRLF endings).
CLASS_IND = b"1 ApplyEyeMakeup\r\n2 ApplyLipstick\r\n3 Archery\r\n4 HandstandPushups\r\n"
TRAIN_01 = (
    b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
    b"ApplyLipstick/v_ApplyLipstick_g08_c02.avi 2\r\n"
    b"HandstandPushups/v_HandStandPushups_g08_c01.avi 4\r\n"
    b"Archery/v_Archery_g25_c07.avi 3\r\n"
)
TEST_01 = (
    b"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n"
    b"HandstandPushups/v_HandStandPushups_g07_c04.avi\r\n"
    b"Archery/v_Archery_g02_c03.avi\r\n"
)


def write_ucf(root: Path, *, class_ind=CLASS_IND, train=TRAIN_01, test=TEST_01) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "classInd.txt").write_bytes(class_ind)
    (root / "trainlist01.txt").write_bytes(train)
    (root / "testlist01.txt").write_bytes(test)
    return root


def test_ucf101_train_list_labels_are_zero_based_in_class_order(tmp_path):
    classes, records = read_ucf101_split(write_ucf(tmp_path), 1, train=True)
    assert classes == ["ApplyEyeMakeup", "ApplyLipstick", "Archery", "HandstandPushups"]
    assert records == [
        VideoRecord("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0),
        VideoRecord("ApplyLipstick/v_ApplyLipstick_g08_c02.avi", 1),
        VideoRecord("HandstandPushups/v_HandStandPushups_g08_c01.avi", 3),
        VideoRecord("Archery/v_Archery_g25_c07.avi", 2),
    ]
    assert not any("\r" in r.path for r in records)


def test_ucf101_test_list_takes_label_from_folder_with_handstand_quirk(tmp_path):
    _, records = read_ucf101_split(write_ucf(tmp_path), 1, train=False)
    assert [(r.path, r.label) for r in records] == [
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", 0),
        ("HandstandPushups/v_HandStandPushups_g07_c04.avi", 3),
        ("Archery/v_Archery_g02_c03.avi", 2),
    ]


def test_ucf101_accepts_lf_bom_and_missing_final_newline(tmp_path):
    crlf = read_ucf101_split(write_ucf(tmp_path / "a"), 1, train=True)
    lf = read_ucf101_split(
        write_ucf(
            tmp_path / "b",
            class_ind=b"\xef\xbb\xbf" + CLASS_IND.replace(b"\r\n", b"\n"),
            train=TRAIN_01.rstrip(b"\r\n"),
        ),
        1,
        train=True,
    )
    assert lf == crlf


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (b"Archery/v_Archery_g08_c01.avi 3 extra\r\n", "expected '<Class>/<video>.avi <label>'"),
        (b"Archery/v_Archery_g08_c01.avi\r\n", "expected '<Class>/<video>.avi <label>'"),
        (b"Archery/v_Archery_g08_c01.avi three\r\n", "expected an integer label"),
        (b"Archery/v_Archery_g08_c01.avi 0\r\n", "1-based label in [1, 4]"),
        (b"Archery/v_Archery_g08_c01.avi 5\r\n", "1-based label in [1, 4]"),
        (
            b"Archery/v_Archery_g08_c01.avi 1\r\n",
            "label 1 (ApplyEyeMakeup) disagrees with the folder",
        ),
        (b"../Archery/v_Archery_g08_c01.avi 3\r\n", "escapes the dataset root"),
        (b"/data/Archery/v_Archery_g08_c01.avi 3\r\n", "escapes the dataset root"),
    ],
)
def test_ucf101_malformed_train_line_names_file_and_line(tmp_path, line, needle):
    root = write_ucf(tmp_path, train=TRAIN_01 + line)
    with pytest.raises(SplitFormatError) as err:
        read_ucf101_split(root, 1, train=True)
    assert "trainlist01.txt:5: " in str(err.value)
    assert needle in str(err.value)


def test_ucf101_test_line_with_unknown_folder_is_an_error(tmp_path):
    root = write_ucf(tmp_path, test=TEST_01 + b"\r\nYoYo/v_YoYo_g01_c01.avi\r\n")
    with pytest.raises(SplitFormatError, match=r"testlist01\.txt:5: folder 'YoYo'"):
        read_ucf101_split(root, 1, train=False)


@pytest.mark.parametrize(
    ("class_ind", "needle"),
    [
        (b"1 ApplyEyeMakeup\r\n3 Archery\r\n", "classInd.txt:2: expected class index 2"),
        (b"0 ApplyEyeMakeup\r\n", "classInd.txt:1: expected class index 1"),
        (b"1 Apply Eye Makeup\r\n", "classInd.txt:1: expected '<index> <ClassName>'"),
        (b"one ApplyEyeMakeup\r\n", "classInd.txt:1: expected an integer class index"),
        (b"\r\n\r\n", "no classes listed"),
    ],
)
def test_class_index_errors(tmp_path, class_ind, needle):
    (tmp_path / "classInd.txt").write_bytes(class_ind)
    with pytest.raises(SplitFormatError) as err:
        read_class_index(tmp_path / "classInd.txt")
    assert needle in str(err.value)


def test_ucf101_bad_split_and_missing_file(tmp_path):
    root = write_ucf(tmp_path)
    with pytest.raises(ValueError, match="split: expected 1, 2 or 3"):
        read_ucf101_split(root, 4)
    with pytest.raises(FileNotFoundError, match=r"trainlist02\.txt"):
        read_ucf101_split(root, 2)


def write_hmdb(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


HMDB = {
    # Published lines end in "<id> " (trailing space); class names hold underscores.
    "shoot_ball_test_split1.txt": b"Basketball_shoot_ball_f_cm_np1_ba_med_0.avi 1 \r\n"
    b"Basketball_shoot_ball_u_cm_np1_fr_med_1.avi 2 \r\n"
    b"Basketball_shoot_ball_u_nm_np1_le_bad_2.avi 0 \r\n",
    "brush_hair_test_split1.txt": b"April_09_brush_hair_u_nm_np1_ba_goo_0.avi 2 \n"
    b"April_09_brush_hair_u_nm_np1_ba_goo_1.avi 1 \n",
    "ride_bike_test_split1.txt": b"Bike_ride_bike_f_cm_np1_ba_goo_0.avi 1 ",
    "brush_hair_test_split2.txt": b"April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \n",
}


def test_hmdb51_ids_classes_and_paths(tmp_path):
    root = write_hmdb(tmp_path, HMDB)
    classes, train = read_hmdb51_split(root, 1, train=True)
    assert classes == ["brush_hair", "ride_bike", "shoot_ball"]
    assert [(r.path, r.label) for r in train] == [
        ("brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_1.avi", 0),
        ("ride_bike/Bike_ride_bike_f_cm_np1_ba_goo_0.avi", 1),
        ("shoot_ball/Basketball_shoot_ball_f_cm_np1_ba_med_0.avi", 2),
    ]
    _, test = read_hmdb51_split(root, 1, train=False)
    assert [(r.path, r.label) for r in test] == [
        ("brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", 0),
        ("shoot_ball/Basketball_shoot_ball_u_cm_np1_fr_med_1.avi", 2),
    ]
    assert read_hmdb51_split(root, 2, train=True)[0] == ["brush_hair"]


@pytest.mark.parametrize("line", [b"a.avi 3 \n", b"a.avi\n", b"a.avi 1 2\n", b"../a.avi 1 \n"])
def test_hmdb51_malformed_line_names_file_and_line(tmp_path, line):
    root = write_hmdb(tmp_path, {"wave_test_split1.txt": b"b.avi 1 \n" + line})
    with pytest.raises(SplitFormatError, match=r"wave_test_split1\.txt:2: "):
        read_hmdb51_split(root, 1)


def test_hmdb51_without_split_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"\*_test_split3\.txt"):
        read_hmdb51_split(write_hmdb(tmp_path, HMDB), 3)


def test_video_list_two_and_three_columns(tmp_path):
    f = tmp_path / "list.txt"
    f.write_bytes(b"a/x.mp4 0\r\nb/y.mp4 150 2\r\n\r\n")
    assert read_video_list(f) == [VideoRecord("a/x.mp4", 0), VideoRecord("b/y.mp4", 2)]
    with pytest.raises(SplitFormatError, match=r"list\.txt:2: expected a 0-based label \[0, 2\)"):
        read_video_list(f, num_classes=2)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (b"a.mp4\n", "expected '<path> <label>'"),
        (b"a.mp4 -1\n", "0-based label"),
        (b"a.mp4 x 1\n", "integer frame count"),
        (b"a/../../b.mp4 1\n", "escapes the dataset root"),
    ],
)
def test_video_list_malformed(tmp_path, line, needle):
    f = tmp_path / "list.txt"
    f.write_bytes(b"ok.mp4 0\n" + line)
    with pytest.raises(SplitFormatError) as err:
        read_video_list(f)
    assert "list.txt:2: " in str(err.value)
    assert needle in str(err.value)
