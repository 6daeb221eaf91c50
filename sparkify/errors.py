"""Errors a user can act on: printed as one paragraph, without a stack trace."""

from __future__ import annotations

import re
from typing import Iterable, Optional


class UserError(Exception):
    """A problem with input, config or output that the user can fix; the message says how."""


_URI = re.compile(r"\b(s3a?|s3n|file|hdfs)://[^\s:;,'\"]+")

# (pattern in the Java/Spark error text, what it means and what to do). First match wins.
_KNOWN = (
    (
        r"AccessDeniedException|403 Forbidden|SignatureDoesNotMatch|InvalidAccessKeyId",
        "S3 refused access to {uri}: the credentials are wrong or lack permission. Check [AWS] "
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in dl.cfg (or the AWS_* variables, or the instance "
        "role's policy: s3:GetObject/ListBucket on the input, s3:PutObject/DeleteObject on the output).",
    ),
    (
        r"NoSuchBucket|UnknownStoreException|Bucket .* does not exist",
        "The bucket of {uri} does not exist (or is in another account/region). Check the URI in "
        "INPUT_DATA / OUTPUT_DATA or --input / --output.",
    ),
    (
        r"UnknownHostException|Connection refused|ConnectException|SdkClientException: Unable to execute HTTP",
        "Cannot reach S3 for {uri}. Check [S3] ENDPOINT in dl.cfg (empty for AWS) and the network.",
    ),
    (
        r"NoAwsCredentialsException|No AWS Credentials|Unable to load AWS credentials",
        "No AWS credentials were found for {uri}. Set [AWS] keys in dl.cfg, the AWS_* variables, "
        "or run where an instance role provides them.",
    ),
    (
        r"PATH_NOT_FOUND|Path does not exist|FileNotFoundException",
        "A path was not found: {uri}. Check INPUT_DATA / --input; it must hold song_data/ and log_data/.",
    ),
    (
        r"Permission denied|AccessControlException|Mkdirs failed|ReadOnlyFileSystem|Read-only file system",
        "Cannot write to {uri}: permission denied. Choose a writable OUTPUT_DATA / --output.",
    ),
)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def explain(exc: BaseException, secrets: Iterable[str] = ()) -> Optional[str]:
    """A one-paragraph explanation of a Spark/Java failure we recognise, or None."""
    text = str(exc)
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            text = f"{java.getClass().getName()}: {java.toString()} {text}"
        except Exception:  # the JVM may be gone
            pass
    for pattern, message in _KNOWN:
        if re.search(pattern, text):
            found = _URI.search(text)
            return redact(message.format(uri=found.group(0) if found else "the input or output"), secrets)
    return None
