#!/usr/bin/env python3
"""Writes Tests/AWSSigV4Tests/botocore-vectors.json: requests signed by botocore's own signer
(S3SigV4Auth for s3, SigV4Auth otherwise) at a fixed time, for AWSSigV4's tests. Run once with
botocore installed (`pip install botocore`); the output is committed, so tests need no botocore."""
import datetime
import json
import pathlib
import sys
import urllib.parse
from unittest import mock

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

WHEN = datetime.datetime(2026, 11, 21, 17, 4, 5, tzinfo=datetime.timezone.utc)
KEYS = Credentials("AKIDBATCHFORMEXAMPLE", "batchform/secret+KEY/EXAMPLEexampleEXAMPLE0")
TEMPORARY = Credentials("ASIABATCHFORMEXAMPLE", "temporary/secret/EXAMPLE", "FwoGZXIvYXdzEXAMPLE//token+with/slashes=")

CASES = [
    ("s3 GET object, path-style, key needing encoding", KEYS, "s3", "us-east-1", "GET",
     "http://127.0.0.1:9000/my.dotted.bucket/data/2026-11-21/part%20one%2B%C3%BC.csv", {"Range": "bytes=1048576-"}, b""),
    ("s3 ListObjectsV2 page with a continuation token", KEYS, "s3", "eu-west-1", "GET",
     "http://localhost:4566/inputs?list-type=2&prefix=day%3D2026-11-21%2Fin&continuation-token=1%2Bx%2Fy%3D%3D&max-keys=1000",
     {}, b""),
    ("s3 UploadPart with a body", KEYS, "s3", "us-west-2", "PUT",
     "https://outputs.s3.us-west-2.amazonaws.com/scores/a.csv.out?partNumber=3&uploadId=VXBsb2FkIElE.example",
     {"Content-Length": "26"}, b"abcdefghijklmnopqrstuvwxyz"),
    ("s3 CompleteMultipartUpload with temporary credentials", TEMPORARY, "s3", "us-east-1", "POST",
     "http://127.0.0.1:9000/outputs/scores/a.csv.out?uploadId=abc",
     {"Content-Type": "application/xml"},
     b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part></CompleteMultipartUpload>"),
    ("s3 DeleteObjects-style subresource without value", KEYS, "s3", "us-east-1", "POST",
     "http://127.0.0.1:9000/outputs?uploads", {"Content-Type": "text/plain", "X-Amz-Meta-Note": "  two   spaces  "}, b""),
    ("sagemaker JSON 1.1 CreateTransformJob", KEYS, "sagemaker", "us-east-1", "POST",
     "http://127.0.0.1:8080/",
     {"X-Amz-Target": "SageMaker.CreateTransformJob", "Content-Type": "application/x-amz-json-1.1"},
     b'{"TransformJobName": "nightly", "ModelName": "m"}'),
    ("sagemaker with temporary credentials, non-default port", TEMPORARY, "sagemaker", "eu-central-1", "POST",
     "http://localhost:18080/",
     {"X-Amz-Target": "SageMaker.DescribeTransformJob", "Content-Type": "application/x-amz-json-1.1"},
     b'{"TransformJobName": "nightly"}'),
    ("service path that needs normalizing and encoding", KEYS, "execute-api", "us-east-1", "GET",
     "https://example.amazonaws.com/a/./b/../c%20d?b=2&a=1&a=0", {}, b""),
]


def sign(description, credentials, service, region, method, url, headers, body):
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    auth_class = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
    auth = auth_class(credentials, service, region)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        auth.add_auth(request)
    split = urllib.parse.urlsplit(request.url)
    signed_names = request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    unsigned = AWSRequest(method=method, url=request.url, headers=dict(request.headers), data=body)
    unsigned.context = request.context
    del unsigned.headers["Authorization"]
    host = auth.headers_to_sign(unsigned)["host"]
    original = [[name, value] for name, value in headers.items()] + [["host", host]]
    return {
        "description": description,
        "accessKeyId": credentials.access_key, "secretAccessKey": credentials.secret_key,
        "sessionToken": credentials.token, "service": service, "region": region, "method": method,
        "path": split.path or "/", "query": split.query, "headers": original,
        "payloadHash": request.headers.get("X-Amz-Content-SHA256") or auth.payload(request),
        "signedHeaders": signed_names, "timestamp": request.context["timestamp"],
        "authorization": request.headers["Authorization"],
        "canonicalRequest": auth.canonical_request(unsigned),
    }


vectors = {"botocore": botocore.__version__, "cases": [sign(*case) for case in CASES]}
target = pathlib.Path(__file__).resolve().parent.parent / "Tests/AWSSigV4Tests/botocore-vectors.json"
target.write_text(json.dumps(vectors, indent=1, ensure_ascii=False) + "\n")
print(f"wrote {len(CASES)} vectors signed by botocore {botocore.__version__} to {target}", file=sys.stderr)
