#!/usr/bin/env python3
"""Presigns cases with botocore, for tests/sigv4_botocore.rs.

Usage: botocore_presign.py CASES.json  -> prints a JSON list of URLs, one per case.

Each case: {method, scheme, host, path (decoded), expires, headers: [[name, value]...],
access_key, secret_key, token (or null), region, timestamp ("YYYY-mm-ddTHH:MM:SSZ")}.

The path is encoded the way botocore's REST serializer encodes an S3 key
(botocore.utils.percent_encode(key, safe='/~')), the request is signed with
botocore.auth.S3SigV4QueryAuth (path-style addressing, s3v4), and the clock is fixed by
patching botocore.auth.get_current_datetime.
"""
import datetime
import json
import sys
from unittest import mock

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.utils


def presign(case):
    now = datetime.datetime.strptime(case["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    creds = botocore.credentials.Credentials(
        case["access_key"], case["secret_key"], case["token"]
    )
    path = botocore.utils.percent_encode(case["path"], safe="/~")
    url = "%s://%s%s" % (case["scheme"], case["host"], path)
    request = botocore.awsrequest.AWSRequest(method=case["method"], url=url)
    for name, value in case["headers"]:
        request.headers[name] = value
    auth = botocore.auth.S3SigV4QueryAuth(creds, "s3", case["region"], expires=case["expires"])
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=now):
        auth.add_auth(request)
    return request.url


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    json.dump([presign(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
