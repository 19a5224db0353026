"""Benchmarks of a published model: accuracy, latency, throughput, size and memory of FP32 and
INT8 through every runtime and service, each figure beside PyTorch FP32 eager from the same run.

Run ``python -m bench --models-dir models`` (``make bench``); ``--help`` lists the options.
"""
