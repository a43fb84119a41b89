#!/usr/bin/env python3
"""boto3 as the reference for what AWS computes, for tests/upload_sessions.rs and
tests/sign_query_botocore.rs.

Usage (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, region us-east-1,
path-style addressing, s3v4):
  boto3_reference.py post ENDPOINT BUCKET KEY CONTENT_TYPE MAX_SIZE
      -> JSON {url, fields} of boto3's generate_presigned_post
  boto3_reference.py upload_part ENDPOINT BUCKET KEY UPLOAD_ID PART_NUMBER EXPIRES TIMESTAMP
      -> the URL of boto3's generate_presigned_url('upload_part'), signed at TIMESTAMP
         (YYYYmmddTHHMMSSZ) by patching botocore's clock
"""
import datetime
import json
import sys
from unittest import mock

import boto3
import botocore.auth
from botocore.config import Config


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def post(endpoint, bucket, key, content_type, max_size):
    return client(endpoint).generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, int(max_size)]],
        ExpiresIn=600,
    )


def upload_part(endpoint, bucket, key, upload_id, part, expires, timestamp):
    now = datetime.datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ")
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=now):
        return client(endpoint).generate_presigned_url(
            "upload_part",
            Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": int(part)},
            ExpiresIn=int(expires),
        )


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "post":
        json.dump(post(*args), sys.stdout)
    elif mode == "upload_part":
        sys.stdout.write(upload_part(*args))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
