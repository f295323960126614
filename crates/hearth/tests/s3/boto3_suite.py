"""Every S3 operation Hearth serves, through boto3 against `hearth serve
--s3-listen`. Driven by crates/hearth/tests/s3_clients.rs, which passes:

  S3_ENDPOINT   http://host:port of the S3 listener
  WORKER_URL    http://host:port of the worker (examples/bindings)
  HEARTH_BIN, HEARTH_CONFIG, HEARTH_DATA_DIR   to create and revoke keys

Every check is an assert; the script prints "boto3 suite: ok" at the end.
"""

import datetime
import hashlib
import base64
import os
import subprocess
import urllib.error
import urllib.request

import boto3
import botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["S3_ENDPOINT"]
WORKER = os.environ["WORKER_URL"]
BUCKET = "files"  # declared by the worker's config


def hearth(*args):
    out = subprocess.run(
        [os.environ["HEARTH_BIN"], "r2", *args, "--config", os.environ["HEARTH_CONFIG"],
         "--data-dir", os.environ["HEARTH_DATA_DIR"]],
        check=True, capture_output=True, text=True,
    )
    return out.stdout


def new_key(*extra):
    lines = hearth("credentials", "create", *extra).splitlines()
    kid = lines[0].split(":", 1)[1].strip()
    secret = lines[1].split(":", 1)[1].strip()
    return kid, secret


def client(kid, secret, **cfg):
    return boto3.client(
        "s3", endpoint_url=ENDPOINT, aws_access_key_id=kid, aws_secret_access_key=secret,
        region_name="auto", config=Config(retries={"max_attempts": 1}, **cfg),
    )


def error_code(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{fn.__name__} succeeded; an error was expected")


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


KID, SECRET = new_key("--name", "suite")
s3 = client(KID, SECRET)

# --- buckets
names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
assert BUCKET in names, names
s3.head_bucket(Bucket=BUCKET)
assert error_code(s3.head_bucket, Bucket="no-such-bucket") == ("404", 404)
s3.create_bucket(Bucket="made-over-s3")
assert "made-over-s3" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
assert error_code(s3.create_bucket, Bucket="made-over-s3")[0] == "BucketAlreadyOwnedByYou"
assert error_code(s3.create_bucket, Bucket="Bad_Name")[0] == "InvalidBucketName"
s3.put_object(Bucket="made-over-s3", Key="x", Body=b"x")
assert error_code(s3.delete_bucket, Bucket="made-over-s3")[0] == "BucketNotEmpty"
s3.delete_object(Bucket="made-over-s3", Key="x")
s3.delete_bucket(Bucket="made-over-s3")
assert error_code(s3.head_bucket, Bucket="made-over-s3") == ("404", 404)
assert error_code(s3.delete_bucket, Bucket=BUCKET)[0] == "InvalidBucketState"
assert error_code(s3.get_object, Bucket="no-such-bucket", Key="k")[0] == "NoSuchBucket"

# --- objects: metadata, content headers, ranges, conditionals
body = bytes(range(256)) * 40
put = s3.put_object(
    Bucket=BUCKET, Key="docs/report.bin", Body=body, ContentType="application/x-report",
    ContentDisposition="attachment; filename=r.bin", CacheControl="max-age=60",
    ContentLanguage="en", Metadata={"owner": "ada", "Case": "Mixed"},
)
etag = put["ETag"]
assert etag == '"%s"' % hashlib.md5(body).hexdigest(), etag
got = s3.get_object(Bucket=BUCKET, Key="docs/report.bin")
assert got["Body"].read() == body
assert got["ContentType"] == "application/x-report"
assert got["ContentDisposition"] == "attachment; filename=r.bin"
assert got["CacheControl"] == "max-age=60"
assert got["ContentLanguage"] == "en"
assert got["Metadata"] == {"owner": "ada", "case": "Mixed"}, got["Metadata"]
assert got["ETag"] == etag
head = s3.head_object(Bucket=BUCKET, Key="docs/report.bin")
assert head["ContentLength"] == len(body) and head["ETag"] == etag
part = s3.get_object(Bucket=BUCKET, Key="docs/report.bin", Range="bytes=10-19")
assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
assert part["ContentRange"] == f"bytes 10-19/{len(body)}"
assert part["Body"].read() == body[10:20]
tail = s3.get_object(Bucket=BUCKET, Key="docs/report.bin", Range="bytes=-5")
assert tail["Body"].read() == body[-5:]
assert error_code(s3.get_object, Bucket=BUCKET, Key="docs/report.bin",
                  Range=f"bytes={len(body) + 10}-")[0] == "InvalidRange"
assert error_code(s3.get_object, Bucket=BUCKET, Key="docs/report.bin", IfNoneMatch=etag) == ("304", 304)
assert error_code(s3.get_object, Bucket=BUCKET, Key="docs/report.bin",
                  IfMatch='"0000"')[0] == "PreconditionFailed"
assert s3.get_object(Bucket=BUCKET, Key="docs/report.bin", IfMatch=etag)["Body"].read() == body
assert error_code(s3.get_object, Bucket=BUCKET, Key="missing")[0] == "NoSuchKey"
assert error_code(s3.head_object, Bucket=BUCKET, Key="missing") == ("404", 404)

# --- checksums
good_md5 = base64.b64encode(hashlib.md5(b"abc").digest()).decode()
s3.put_object(Bucket=BUCKET, Key="sum/md5", Body=b"abc", ContentMD5=good_md5)
bad_md5 = base64.b64encode(hashlib.md5(b"abd").digest()).decode()
assert error_code(s3.put_object, Bucket=BUCKET, Key="sum/md5-bad", Body=b"abc",
                  ContentMD5=bad_md5)[0] == "BadDigest"
assert error_code(s3.head_object, Bucket=BUCKET, Key="sum/md5-bad") == ("404", 404)
s3.put_object(Bucket=BUCKET, Key="sum/sha256", Body=b"abc", ChecksumAlgorithm="SHA256")
got = s3.get_object(Bucket=BUCKET, Key="sum/sha256", ChecksumMode="ENABLED")
assert got["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"abc").digest()).decode()
assert got["Body"].read() == b"abc"
import binascii
crc = base64.b64encode(binascii.crc32(b"abc").to_bytes(4, "big")).decode()
s3.put_object(Bucket=BUCKET, Key="sum/crc32", Body=b"abc", ChecksumCRC32=crc)
assert error_code(s3.put_object, Bucket=BUCKET, Key="sum/crc-bad", Body=b"abc",
                  ChecksumCRC32="AAAAAA==")[0] == "BadDigest"
# A verified CRC is stored with the object and returned when asked for;
# boto3 checks it against the body it reads.
got = s3.get_object(Bucket=BUCKET, Key="sum/crc32", ChecksumMode="ENABLED")
assert got["ChecksumCRC32"] == crc, got
assert got["Body"].read() == b"abc"
assert s3.head_object(Bucket=BUCKET, Key="sum/crc32", ChecksumMode="ENABLED")["ChecksumCRC32"] == crc
# boto3 computing the CRC itself (CRC32C would need botocore[crt]).
big = b"abcd" * 100000
s3.put_object(Bucket=BUCKET, Key="sum/crc32-auto", Body=big, ChecksumAlgorithm="CRC32")
got = s3.get_object(Bucket=BUCKET, Key="sum/crc32-auto", ChecksumMode="ENABLED")
assert got["ChecksumCRC32"] == base64.b64encode(binascii.crc32(big).to_bytes(4, "big")).decode()
assert got["Body"].read() == big

# --- copy
s3.copy_object(Bucket=BUCKET, Key="docs/copy.bin", CopySource={"Bucket": BUCKET, "Key": "docs/report.bin"})
c = s3.get_object(Bucket=BUCKET, Key="docs/copy.bin")
assert c["Body"].read() == body and c["Metadata"]["owner"] == "ada"
s3.copy_object(Bucket=BUCKET, Key="docs/copy2.bin", CopySource=f"{BUCKET}/docs/report.bin",
               MetadataDirective="REPLACE", Metadata={"owner": "grace"}, ContentType="text/plain")
c2 = s3.head_object(Bucket=BUCKET, Key="docs/copy2.bin")
assert c2["Metadata"] == {"owner": "grace"} and c2["ContentType"] == "text/plain"
assert error_code(s3.copy_object, Bucket=BUCKET, Key="x",
                  CopySource={"Bucket": BUCKET, "Key": "missing"})[0] == "NoSuchKey"

# --- keys that look like paths stay keys
odd = ["../../escape", "/abs/olute", "dir/ü ni+code & ?.txt", "a//b"]
for k in odd:
    s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode())
    assert s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() == k.encode(), k

# --- listing
for i in range(5):
    s3.put_object(Bucket=BUCKET, Key=f"list/{i}.txt", Body=b"%d" % i)
s3.put_object(Bucket=BUCKET, Key="list/sub/deep.txt", Body=b"d")
r = s3.list_objects_v2(Bucket=BUCKET, Prefix="list/", Delimiter="/")
assert [o["Key"] for o in r["Contents"]] == [f"list/{i}.txt" for i in range(5)], r
assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["list/sub/"]
assert r["KeyCount"] == 6
keys, token = [], None
while True:
    kw = {"ContinuationToken": token} if token else {}
    page = s3.list_objects_v2(Bucket=BUCKET, Prefix="list/", MaxKeys=2, **kw)
    keys += [o["Key"] for o in page.get("Contents", [])]
    if not page["IsTruncated"]:
        break
    token = page["NextContinuationToken"]
assert keys == [f"list/{i}.txt" for i in range(5)] + ["list/sub/deep.txt"], keys
r = s3.list_objects_v2(Bucket=BUCKET, Prefix="list/", StartAfter="list/2.txt")
assert [o["Key"] for o in r["Contents"]] == ["list/3.txt", "list/4.txt", "list/sub/deep.txt"]
r = s3.list_objects_v2(Bucket=BUCKET, Prefix="list/", MaxKeys=0)
assert r["KeyCount"] == 0 and not r["IsTruncated"]
r = s3.list_objects(Bucket=BUCKET, Prefix="list/", Marker="list/3.txt")
assert [o["Key"] for o in r["Contents"]] == ["list/4.txt", "list/sub/deep.txt"]
paginated = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(
    Bucket=BUCKET, PaginationConfig={"PageSize": 3}) for o in p.get("Contents", [])]
assert "dir/ü ni+code & ?.txt" in paginated and "../../escape" in paginated

# --- delete
s3.delete_object(Bucket=BUCKET, Key="list/0.txt")
s3.delete_object(Bucket=BUCKET, Key="list/0.txt")  # missing: still 204
res = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": f"list/{i}.txt"} for i in (1, 2, 3)]})
assert sorted(d["Key"] for d in res["Deleted"]) == ["list/1.txt", "list/2.txt", "list/3.txt"]
left = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="list/")["Contents"]]
assert left == ["list/4.txt", "list/sub/deep.txt"], left

# --- multipart: 3 parts, one of them copied from an object
MiB = 1024 * 1024
p1, p2, p3 = b"1" * (5 * MiB), b"2" * (5 * MiB), b"3" * 1000
s3.put_object(Bucket=BUCKET, Key="mp/source", Body=b"x" * MiB + p2)
up = s3.create_multipart_upload(Bucket=BUCKET, Key="mp/object", ContentType="video/mp4",
                                Metadata={"kind": "multipart"})
uid = up["UploadId"]
e1 = s3.upload_part(Bucket=BUCKET, Key="mp/object", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
e2 = s3.upload_part_copy(Bucket=BUCKET, Key="mp/object", UploadId=uid, PartNumber=2,
                         CopySource={"Bucket": BUCKET, "Key": "mp/source"},
                         CopySourceRange=f"bytes={MiB}-{MiB + len(p2) - 1}")["CopyPartResult"]["ETag"]
e3 = s3.upload_part(Bucket=BUCKET, Key="mp/object", UploadId=uid, PartNumber=3, Body=p3)["ETag"]
assert e2 == '"%s"' % hashlib.md5(p2).hexdigest()
listed = s3.list_parts(Bucket=BUCKET, Key="mp/object", UploadId=uid)
assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [(1, len(p1)), (2, len(p2)), (3, len(p3))]
uploads = s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
assert [(u["Key"], u["UploadId"]) for u in uploads] == [("mp/object", uid)], uploads
assert error_code(s3.complete_multipart_upload, Bucket=BUCKET, Key="mp/object", UploadId=uid,
                  MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2},
                                             {"PartNumber": 1, "ETag": e1}]})[0] == "InvalidPartOrder"
assert error_code(s3.complete_multipart_upload, Bucket=BUCKET, Key="mp/object", UploadId=uid,
                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"%s"' % ("0" * 32)}]})[0] == "InvalidPart"
done = s3.complete_multipart_upload(
    Bucket=BUCKET, Key="mp/object", UploadId=uid,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2},
                               {"PartNumber": 3, "ETag": e3}]})
md5s = b"".join(hashlib.md5(p).digest() for p in (p1, p2, p3))
assert done["ETag"] == '"%s-3"' % hashlib.md5(md5s).hexdigest(), done["ETag"]
got = s3.get_object(Bucket=BUCKET, Key="mp/object")
assert got["Body"].read() == p1 + p2 + p3
assert got["ContentType"] == "video/mp4" and got["Metadata"] == {"kind": "multipart"}
assert s3.get_object(Bucket=BUCKET, Key="mp/object", Range=f"bytes={5 * MiB - 2}-{5 * MiB + 1}")["Body"].read() == b"1122"
assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
ab = s3.create_multipart_upload(Bucket=BUCKET, Key="mp/aborted")["UploadId"]
s3.upload_part(Bucket=BUCKET, Key="mp/aborted", UploadId=ab, PartNumber=1, Body=b"x")
s3.abort_multipart_upload(Bucket=BUCKET, Key="mp/aborted", UploadId=ab)
assert error_code(s3.list_parts, Bucket=BUCKET, Key="mp/aborted", UploadId=ab)[0] == "NoSuchUpload"
assert error_code(s3.upload_part, Bucket=BUCKET, Key="mp/aborted", UploadId=ab, PartNumber=2,
                  Body=b"y")[0] == "NoSuchUpload"

# --- boto3's managed transfer (multipart with its own part size and threads)
from boto3.s3.transfer import TransferConfig
blob = os.urandom(12 * MiB)
import io
s3.upload_fileobj(io.BytesIO(blob), BUCKET, "transfer/blob",
                  Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
out = io.BytesIO()
s3.download_fileobj(BUCKET, "transfer/blob", out,
                    Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
assert out.getvalue() == blob

# --- presigned URLs
url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "docs/report.bin"}, ExpiresIn=300)
status, _, data = http("GET", url)
assert (status, data) == (200, body), status
url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "presigned/put.txt"}, ExpiresIn=300)
status, _, _ = http("PUT", url, body=b"put through a presigned URL")
assert status == 200, status
assert s3.get_object(Bucket=BUCKET, Key="presigned/put.txt")["Body"].read() == b"put through a presigned URL"
tampered = url.replace("presigned/put.txt", "presigned/other.txt")
status, _, data = http("PUT", tampered, body=b"x")
assert status == 403 and b"SignatureDoesNotMatch" in data, (status, data)

real_now = botocore.auth.get_current_datetime


def shifted(delta):
    botocore.auth.get_current_datetime = lambda *a, **k: real_now(*a, **k) + delta


shifted(datetime.timedelta(hours=-2))
expired = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "docs/report.bin"}, ExpiresIn=3600)
status, _, data = http("GET", expired)
assert status == 403 and b"AccessDenied" in data and b"expired" in data, (status, data)
# --- a request signed 20 minutes off
shifted(datetime.timedelta(minutes=-20))
assert error_code(client(KID, SECRET).head_bucket, Bucket=BUCKET) == ("403", 403)
assert error_code(client(KID, SECRET).get_object, Bucket=BUCKET, Key="docs/report.bin")[0] == "RequestTimeTooSkewed"
botocore.auth.get_current_datetime = real_now

# --- wrong secret, unknown key, scoped and read-only keys, revocation
assert error_code(client(KID, SECRET[:-1] + "x").get_object, Bucket=BUCKET, Key="docs/report.bin")[0] == "SignatureDoesNotMatch"
assert error_code(client("HRTHNOSUCHKEY0000000", SECRET).list_buckets)[0] == "InvalidAccessKeyId"
ro = client(*new_key("--read-only"))
assert ro.get_object(Bucket=BUCKET, Key="docs/report.bin")["Body"].read() == body
assert error_code(ro.put_object, Bucket=BUCKET, Key="ro", Body=b"x")[0] == "AccessDenied"
assert error_code(ro.delete_object, Bucket=BUCKET, Key="docs/report.bin")[0] == "AccessDenied"
s3.create_bucket(Bucket="other-bucket")
scoped = client(*new_key("--bucket", BUCKET))
assert scoped.get_object(Bucket=BUCKET, Key="docs/report.bin")["Body"].read() == body
assert error_code(scoped.list_objects_v2, Bucket="other-bucket")[0] == "AccessDenied"
assert [b["Name"] for b in scoped.list_buckets()["Buckets"]] == [BUCKET]
assert error_code(scoped.create_bucket, Bucket="by-scoped-key")[0] == "AccessDenied"
rk_id, rk_secret = new_key()
revocable = client(rk_id, rk_secret)
revocable.head_bucket(Bucket=BUCKET)
hearth("credentials", "revoke", rk_id)
assert error_code(revocable.get_object, Bucket=BUCKET, Key="docs/report.bin")[0] == "InvalidAccessKeyId"
assert rk_id in hearth("credentials", "list") and "revoked" in hearth("credentials", "list")
status, _, data = http("GET", f"{ENDPOINT}/{BUCKET}/docs/report.bin")
assert status == 403 and b"AccessDenied" in data

# --- CORS for browsers using presigned URLs
s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": [{
    "AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT"],
    "AllowedHeaders": ["content-type"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]})
assert s3.get_bucket_cors(Bucket=BUCKET)["CORSRules"][0]["AllowedOrigins"] == ["https://app.example.com"]
status, headers, _ = http("OPTIONS", f"{ENDPOINT}/{BUCKET}/presigned/put.txt", headers={
    "Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
    "Access-Control-Request-Headers": "content-type"})
h = {k.lower(): v for k, v in headers.items()}
assert status == 200 and h["access-control-allow-origin"] == "https://app.example.com", (status, h)
assert "PUT" in h["access-control-allow-methods"] and h["access-control-max-age"] == "600"
status, _, _ = http("OPTIONS", f"{ENDPOINT}/{BUCKET}/x", headers={
    "Origin": "https://evil.example.org", "Access-Control-Request-Method": "GET"})
assert status == 403
url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "docs/report.bin"})
status, headers, _ = http("GET", url, headers={"Origin": "https://app.example.com"})
h = {k.lower(): v for k, v in headers.items()}
assert status == 200 and h["access-control-allow-origin"] == "https://app.example.com"
assert h["access-control-expose-headers"] == "ETag"
s3.delete_bucket_cors(Bucket=BUCKET)
assert error_code(s3.get_bucket_cors, Bucket=BUCKET)[0] == "NoSuchCORSConfiguration"

# --- the worker and S3 see the same bucket at once
s3.put_object(Bucket=BUCKET, Key="shared/from-s3.txt", Body=b"written over S3")
status, _, data = http("GET", f"{WORKER}/files/shared/from-s3.txt")
assert (status, data) == (200, b"written over S3"), (status, data)
status, _, _ = http("PUT", f"{WORKER}/files/shared/from-worker.txt", body=b"written by the worker")
assert status == 201, status
assert s3.get_object(Bucket=BUCKET, Key="shared/from-worker.txt")["Body"].read() == b"written by the worker"

print("boto3 suite: ok")
