"""The Vectorize benchmark's peer: hnswlib on the same vectors, queries
and ground truth, with the same graph parameters, in-process (no HTTP).

    python vectorize_hnswlib.py <dir> <dims> <M> <ef_construction> <ef> <seconds>

<dir> holds data.f32, queries.f32 (float32, little-endian) and
truth.u32 / truth_filtered.u32 (10 ids per query). Vector i has metadata
category i % 10; the filtered case keeps category 3. Prints one JSON object.
"""
import json
import sys
import time

import hnswlib
import numpy as np


def main():
    d, dims, m, efc, ef, seconds = sys.argv[1], *map(int, sys.argv[2:6]), float(sys.argv[6])
    data = np.fromfile(f"{d}/data.f32", dtype="<f4").reshape(-1, dims)
    queries = np.fromfile(f"{d}/queries.f32", dtype="<f4").reshape(-1, dims)
    truth = np.fromfile(f"{d}/truth.u32", dtype="<u4").reshape(-1, 10)
    truth_f = np.fromfile(f"{d}/truth_filtered.u32", dtype="<u4").reshape(-1, 10)
    n = len(data)
    index = hnswlib.Index(space="cosine", dim=dims)
    index.init_index(max_elements=n + 1000, ef_construction=efc, M=m)
    t = time.perf_counter()
    index.add_items(data, np.arange(n), num_threads=1)
    build = time.perf_counter() - t
    index.set_ef(ef)
    index.set_num_threads(1)
    only3 = lambda label: label % 10 == 3

    def run(filtered):
        lat, hits = [], 0
        for qi, q in enumerate(queries):
            t = time.perf_counter()
            labels, _ = index.knn_query(q, k=10, filter=only3 if filtered else None)
            lat.append(time.perf_counter() - t)
            want = truth_f[qi] if filtered else truth[qi]
            hits += len(set(labels[0].tolist()) & set(want.tolist()))
        lat.sort()
        return {
            "recall": hits / (10 * len(queries)),
            "p50_ms": lat[len(lat) // 2] * 1000,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        }

    def rate(filtered):
        done, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            index.knn_query(queries[done % len(queries)], k=10, filter=only3 if filtered else None)
            done += 1
        return done / seconds

    out = {"build_s": build, "plain": run(False), "filtered": run(True)}
    out["plain"]["qps"] = rate(False)
    out["filtered"]["qps"] = rate(True)
    visible = []
    for i in range(50):
        q = queries[i]
        t = time.perf_counter()
        index.add_items(q.reshape(1, -1), np.array([n + i]))
        labels, _ = index.knn_query(q, k=1)
        assert labels[0][0] == n + i
        visible.append(time.perf_counter() - t)
    visible.sort()
    out["visible_p50_ms"] = visible[len(visible) // 2] * 1000
    out["visible_max_ms"] = visible[-1] * 1000
    print(json.dumps(out))


main()
