# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the droot_fetch tests ask of an S3 endpoint (S3_ENDPOINT and the AWS_* variables).

  s3util.py mkbucket BUCKET
  s3util.py put BUCKET FILE...         upload each FILE under its base name
  s3util.py get BUCKET KEY FILE        download an object
  s3util.py deny BUCKET KEY FILE       an IAM user that may not read, then moto enforces auth;
                                       prints the user's keys (own moto_server only)
  s3util.py gets LOG BUCKET KEY        how many GETs of exactly /BUCKET/KEY moto_server logged
"""

import json
import os
import re
import sys
import urllib.request

import boto3


def client(service="s3"):
    return boto3.client(service, endpoint_url=os.environ["S3_ENDPOINT"])


def mkbucket(bucket):
    client().create_bucket(Bucket=bucket)


def put(bucket, *paths):
    s3 = client()
    for path in paths:
        s3.upload_file(path, bucket, os.path.basename(path))


def get(bucket, key, path):
    client().download_file(bucket, key, path)


def deny(bucket, key, path):
    mkbucket(bucket)
    client().upload_file(path, bucket, key)
    iam = client("iam")
    iam.create_user(UserName="droot-fetch-nobody")
    iam.put_user_policy(UserName="droot-fetch-nobody", PolicyName="no-reads", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}],
    }))
    keys = iam.create_access_key(UserName="droot-fetch-nobody")["AccessKey"]
    request = urllib.request.Request(os.environ["S3_ENDPOINT"] + "/moto-api/reset-auth", data=b"0",
                                     method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request).read()
    print(json.dumps({"access_key": keys["AccessKeyId"], "secret_key": keys["SecretAccessKey"]}))


def gets(log, bucket, key):
    pattern = re.compile(r'"GET /%s/%s(\?[^ ]*)? HTTP' % (re.escape(bucket), re.escape(key)))
    with open(log, encoding="utf-8", errors="replace") as handle:
        print(sum(1 for line in handle if pattern.search(line)))


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
