"""``python -m bench.pytorch_process DIR SEQ``: load the FP32 model with PyTorch, answer one
window, print the process's peak resident bytes. The memory baseline the services compare to."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    import torch
    from transformers import AutoModelForQuestionAnswering

    directory, length = argv[0], int(argv[1])
    model = AutoModelForQuestionAnswering.from_pretrained(directory).eval()
    ids = torch.ones((1, length), dtype=torch.int64)
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=ids)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) * 1024)
            return 0
    import resource

    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # kilobytes on Linux
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
