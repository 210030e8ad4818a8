"""PyTorch reference for the GPU benchmark: causal scaled_dot_product_attention in fp32.

Same shapes as the WGSL benchmark (B=1, H=32, D=128, causal), inputs resident on the GPU, timed
with CUDA events (median of repeats after a warm-up). TF32 stays off so the comparison is
fp32 against fp32. Prints one JSON line per sequence length and which SDPA kernel ran.
"""
import json
import sys

import torch
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def sdpa_kernel_name(q, k, v):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    for name, backend in [("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)]:
        try:
            with sdpa_kernel(backend):
                F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return name
        except RuntimeError:
            continue
    return "math"


def main():
    seqs = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "4096,16384,65536").split(",")]
    heads, dim = 32, 128
    for seq in seqs:
        g = torch.Generator(device="cuda").manual_seed(seq)
        q, k, v = (torch.randn(1, heads, seq, dim, device="cuda", dtype=torch.float32, generator=g) for _ in range(3))
        kernel = sdpa_kernel_name(q, k, v)
        F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.cuda.synchronize()
        times = []
        repeats = 3 if seq >= 65536 else 5
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            F.scaled_dot_product_attention(q, k, v, is_causal=True)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        times.sort()
        ms = times[len(times) // 2]
        pairs = seq * (seq + 1) / 2 * heads
        print(json.dumps({"suite": "torch-sdpa", "seqLength": seq, "ms": ms, "tflops": 4 * pairs * dim / ms / 1e9, "kernel": kernel, "device": torch.cuda.get_device_name(), "torch": torch.__version__}), flush=True)
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
