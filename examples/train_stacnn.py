"""Train and evaluate STA-CNN and its TSN ablations (RGB, flow and fused two-stream).

The training engine lives in the package (:mod:`attnvideo.engine`); this script is the
command line ``attnvideo-train`` (also ``python -m attnvideo.train``) kept where the
docs have always pointed. With no arguments it makes (or reuses) the built-in synthetic
action dataset in ``~/.cache/attnvideo``, computes its optical flow, trains TSN and
STA-CNN on a tiny CPU backbone and prints the comparison table on 400 test clips, with
each accuracy's 95% interval (see docs/reproducing.md for the distribution over seeds)::

    python examples/train_stacnn.py

The paper's recipe on UCF-101 / HMDB-51 (TSN protocol: 3 segments in training, 25
snippets x 10 crops in testing, RGB and flow streams trained separately and fused 1 : 1.5)::

    attnvideo-flow /data/UCF-101 /data/UCF-101-flow --workers 16          # flow once
    python examples/train_stacnn.py --preset ucf101 --data-root /data/UCF-101 \\
        --annotations /data/ucfTrainTestlist --flow-root /data/UCF-101-flow
    torchrun --nproc_per_node=8 examples/train_stacnn.py --preset ucf101 \\
        --data-root /data/UCF-101 --annotations /data/ucfTrainTestlist \\
        --flow-root /data/UCF-101-flow --ablation --output-dir runs/ucf101-split1

Offline without cached ImageNet weights: add ``--no-pretrained`` (from scratch; with
``--no-partial-bn``) or ``--pretrained-file resnet50.safetensors``. Under SLURM, launch it
with ``srun`` after exporting ``MASTER_ADDR`` and ``MASTER_PORT``.

One stream at a time: ``--modality rgb`` or ``--modality flow`` (``two_stream``, the
default, trains both, then fuses). ``--ablation`` trains TSN, TSN+TA, TSN+SA and STA-CNN
with the same seed and data. ``--resume`` continues from the checkpoints in
``--output-dir`` (mid-epoch included); ``--eval-only`` evaluates what is there.
``--batch-size`` is the *global* batch: torchrun splits it over the processes, so a run
on 8 GPUs and one on 1 GPU take the same optimisation steps.

Writes to ``--output-dir``: ``metrics.json`` (``{run: {"rgb"|"flow"|"fused": {top1,
top5, mean_class_accuracy, clip_accuracy}}}``), ``log.jsonl`` (one line per epoch and per
evaluation), ``config.json`` (the resolved settings), ``run.json`` (what
``attnvideo-predict`` needs to rebuild the streams anywhere), ``<stream>/`` checkpoints
(weights in safetensors) and ``figures/`` (attention PNG + GIF).

The same in Python::

    from attnvideo.engine import resolve_config, train
    metrics = train(resolve_config(epochs=1, output_dir="runs/quick"))
"""

from __future__ import annotations

import sys

from attnvideo.train import main

if __name__ == "__main__":
    sys.exit(main())
