# -*- coding: utf-8 -*-
# Copyright: droot.core contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 connection options shared by droot_export and droot_fetch."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  endpoint_url:
    description:
      - URL of an S3-compatible endpoint, for example C(http://127.0.0.1:5000) for moto or MinIO.
      - When unset, boto3 uses AWS S3 (or C(AWS_ENDPOINT_URL_S3)/C(AWS_ENDPOINT_URL) from the environment).
    type: str
  region:
    description:
      - AWS region of the bucket.
      - When unset, boto3's chain applies (C(AWS_REGION), C(AWS_DEFAULT_REGION), the profile's config).
    type: str
  profile:
    description:
      - Named profile from C(~/.aws/config) and C(~/.aws/credentials).
      - When unset, C(AWS_PROFILE) or the default profile applies.
    type: str
  access_key:
    description:
      - AWS access key ID.
      - When unset, boto3's credential chain applies (C(AWS_ACCESS_KEY_ID), the profile, instance metadata).
    type: str
  secret_key:
    description:
      - AWS secret access key, used with O(access_key).
    type: str
  session_token:
    description:
      - AWS session token for temporary credentials.
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of the S3 endpoint (and of C(https://) locations).
    type: bool
    default: true
requirements:
  - boto3 (for C(s3://) locations)
"""
