"""SageMaker handlers for an image classifier fed JSON Lines records whose "inputs" field holds
base64-encoded image bytes, as they would ship in model.tar.gz under code/."""
import base64
import json
import os

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def decode_pgm(data):
    """Pixels of a binary greyscale PGM (P5) image: magic, width, height, maxval, then raw bytes."""
    magic, width, height, maxval, pixels = data.split(maxsplit=4)
    if magic != b"P5" or int(maxval) > 255:
        raise ValueError("inputs must be an 8-bit binary PGM (P5) image")
    return np.frombuffer(pixels, dtype=np.uint8, count=int(width) * int(height)).astype(np.float64)


def input_fn(request_body, request_content_type):
    if request_content_type != "application/jsonlines":
        raise ValueError(f"this model reads application/jsonlines, not {request_content_type}")
    records = [json.loads(line) for line in request_body.splitlines() if line.strip()]
    images = np.stack([decode_pgm(base64.b64decode(record["inputs"])) for record in records])
    return records, images


def predict_fn(input_data, model):
    records, images = input_data
    return records, model.predict_proba(images)


def output_fn(prediction, accept):
    records, probabilities = prediction
    lines = []
    for record, scores in zip(records, probabilities):
        label = int(np.argmax(scores))
        answer = {"id": record["id"], "date": record["date"], "label": label, "score": round(float(scores[label]), 6)}
        lines.append(json.dumps(answer) + "\n")
    return "".join(lines), "application/jsonlines"
