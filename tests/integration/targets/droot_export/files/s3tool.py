"""What the droot_export tests ask of the S3 endpoint, through boto3.

Usage (endpoint and credentials from S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION):
  s3tool.py mkbucket BUCKET [--versioned]   create a bucket (versioning counts rewrites)
  s3tool.py state BUCKET KEY                JSON: exists, versions, open multipart uploads
  s3tool.py get BUCKET KEY FILE             download an object
  s3tool.py restrict BUCKET                 IAM user that may read but not write; prints its keys,
                                            then turns on moto's request authorization
"""

import json
import os
import sys
import urllib.request

import boto3
from botocore.exceptions import ClientError


def client(service="s3"):
    return boto3.client(service, endpoint_url=os.environ["S3_ENDPOINT"])


def mkbucket(bucket, *flags):
    s3 = client()
    s3.create_bucket(Bucket=bucket)
    if "--versioned" in flags:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def state(bucket, key):
    s3 = client()
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        print(json.dumps({"exists": False, "versions": 0, "uploads": 0, "bucket": "missing"}))
        return
    versions = [v for v in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
                if v["Key"] == key]
    objects = [o for o in s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", []) if o["Key"] == key]
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    print(json.dumps({"exists": bool(objects), "versions": len(versions), "uploads": len(uploads),
                      "etag": objects[0]["ETag"].strip('"') if objects else None}))


def get(bucket, key, path):
    client().download_file(bucket, key, path)


def restrict(bucket):
    client().create_bucket(Bucket=bucket)
    iam = client("iam")
    iam.create_user(UserName="droot-export-reader")
    iam.put_user_policy(UserName="droot-export-reader", PolicyName="read-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName="droot-export-reader")["AccessKey"]
    request = urllib.request.Request(os.environ["S3_ENDPOINT"] + "/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request).read()
    print(json.dumps({"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}))


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
