#!/usr/bin/env python3
"""A real S3-compatible server on loopback for the tests: moto's server with authentication on
(an IAM user with full access is created first), and in front of it a fault-injecting proxy.

Prints one line, `READY <s3 port> <proxy port> <access key id> <secret key>`, then serves until
its standard input closes, so it never outlives the test process that started it. Meanwhile
each line on standard input is a command answered by one line on standard output:
`bucket NAME` creates a bucket; `uploads BUCKET` counts its unfinished multipart uploads;
`etag BUCKET KEY` gives an object's ETag (or `none`); `faults` counts the faults injected.

The proxy forwards everything to moto, but every `--fault-every`-th request it answers itself
with a fault, in turn: 503 SlowDown, 500 InternalError, a GET whose body is cut off half way
(the connection closed), and for CompleteMultipartUpload a 200 whose body is an <Error>."""
import argparse
import http.client
import http.server
import json
import socket
import sys
import threading

import boto3
import requests
from moto.server import ThreadedMotoServer


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="batchform-tests")
    iam.put_user_policy(UserName="batchform-tests", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="batchform-tests")["AccessKey"]
    # From here on every request must be signed by a known key.
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0").raise_for_status()
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    return port, key["AccessKeyId"], key["SecretAccessKey"], s3


class FaultProxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_port, fault_every):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream_port = upstream_port
        self.fault_every = fault_every
        self.count = 0
        self.faults = 0
        self.lock = threading.Lock()

    def next_fault(self, method, path):
        """Which fault this request gets, or None; the kinds take turns, as each applies."""
        with self.lock:
            self.count += 1
            if self.fault_every <= 0 or self.count % self.fault_every:
                return None
            kinds = ["slowdown", "internal"]
            if method == "GET" and "list-type" not in path:
                kinds.append("cut")
            if method == "POST" and "uploadId=" in path:
                kinds.append("error-in-200")
            kind = kinds[self.faults % len(kinds)]
            self.faults += 1
            return kind


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, code, message):
        body = f"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = self.server.next_fault(self.command, self.path)
        if fault == "slowdown":
            return self.answer(503, "SlowDown", "Please reduce your request rate.")
        if fault == "internal":
            return self.answer(500, "InternalError", "We encountered an internal error. Please try again.")
        if fault == "error-in-200":
            return self.answer(200, "InternalError", "We encountered an internal error. Please try again.")
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=60)
        headers = {name: value for name, value in self.headers.items() if name.lower() != "connection"}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if fault == "cut" and len(payload) > 1:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif self.command != "HEAD":
            self.wfile.write(payload)
        upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fault-every", type=int, default=4)
    arguments = parser.parse_args()
    port, key_id, secret, s3 = start_moto()
    proxy = FaultProxy(port, arguments.fault_every)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    print(f"READY {port} {proxy.server_address[1]} {key_id} {secret}", flush=True)
    for line in sys.stdin:
        command, *arguments = line.split()
        try:
            if command == "bucket":
                s3.create_bucket(Bucket=arguments[0])
                answer = "ok"
            elif command == "uploads":
                answer = str(len(s3.list_multipart_uploads(Bucket=arguments[0]).get("Uploads", [])))
            elif command == "etag":
                try:
                    answer = s3.head_object(Bucket=arguments[0], Key=arguments[1])["ETag"]
                except s3.exceptions.ClientError:
                    answer = "none"
            elif command == "faults":
                answer = str(proxy.faults)
            else:
                answer = f"error unknown command {command}"
        except Exception as error:  # the test reads the reason instead of hanging
            answer = f"error {error}".replace("\n", " ")
        print(answer, flush=True)


if __name__ == "__main__":
    main()
