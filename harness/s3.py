"""The harness's S3 stand-in (harness/s3-stand-in.sh), from the machine's side.

python harness/s3.py reset-bucket NAME   empty NAME (or create it)
python harness/s3.py ensure-bucket NAME  create NAME when missing (moto keeps nothing across restarts)
python harness/s3.py objects NAME        list NAME's keys, one per line
"""

from __future__ import annotations

import sys

import boto3

ENDPOINT = "http://127.0.0.1:9000"


def client():
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def keys(s3, bucket: str) -> list[str]:
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found += [item["Key"] for item in page.get("Contents", [])]
    return found


def ensure_bucket(bucket: str) -> None:
    s3 = client()
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)


def reset_bucket(bucket: str) -> None:
    s3 = client()
    existing = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    if bucket in existing:
        for key in keys(s3, bucket):
            s3.delete_object(Bucket=bucket, Key=key)
    else:
        s3.create_bucket(Bucket=bucket)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("reset-bucket", "ensure-bucket", "objects"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "reset-bucket":
        reset_bucket(argv[2])
    elif argv[1] == "ensure-bucket":
        ensure_bucket(argv[2])
    else:
        print("\n".join(keys(client(), argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
