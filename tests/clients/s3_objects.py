"""Signed S3 object operations for the end-to-end tests (works on moto, MinIO or any S3).

    s3_objects.py list     s3://bucket/prefix            keys under prefix, one per line
    s3_objects.py download s3://bucket/prefix DIR        every object into DIR (by file name)
    s3_objects.py corrupt  s3://bucket/prefix            flips a byte mid-way in the first .parquet
    s3_objects.py delete   s3://bucket/prefix            deletes every object under prefix
    s3_objects.py uploads  s3://bucket/prefix            unfinished multipart uploads under prefix,
                                                         "key upload_id" per line

The endpoint and credentials come from AWS_ENDPOINT_URL / AWS_* like the broker's.
"""
import os
import sys

import boto3


def keys_under(s3, bucket, prefix):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def main():
    mode, url = sys.argv[1], sys.argv[2]
    bucket, _, prefix = url[len("s3://"):].partition("/")
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    if mode == "uploads":
        pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for upload in page.get("Uploads", []):
                print(upload["Key"], upload["UploadId"])
        return
    keys = keys_under(s3, bucket, prefix)
    if mode == "list":
        for key in keys:
            print(key)
    elif mode == "download":
        for key in keys:
            s3.download_file(bucket, key, os.path.join(sys.argv[3], key.rsplit("/", 1)[1]))
        print(len(keys))
    elif mode == "corrupt":
        key = [k for k in keys if k.endswith(".parquet")][0]
        body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        body[len(body) // 2] ^= 0x40
        s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))
        print(key)
    elif mode == "delete":
        for key in keys:
            s3.delete_object(Bucket=bucket, Key=key)
        print(len(keys))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
