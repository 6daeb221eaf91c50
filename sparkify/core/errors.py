"""Errors a user can act on: printed as one paragraph, without a stack trace."""

from __future__ import annotations

import re
from typing import Iterable, List, Optional


class UserError(Exception):
    """A problem with input, config or output that the user can fix; the message says how."""


_URI = re.compile(r"\b(s3a?|s3n|file|hdfs)://[^\s:;,'\"]+")
_S3_URI = re.compile(r"\bs3[an]?://")

# (pattern in the Java/Spark error text, what it means and what to do, only when an S3 URI or
# S3 client is in the error). First match wins.
_KNOWN = (
    (
        r"AccessDeniedException|403 Forbidden|SignatureDoesNotMatch|InvalidAccessKeyId",
        "S3 refused access to {uri}: the credentials are wrong or lack permission. Check [AWS] "
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in dl.cfg (or the AWS_* variables, or the instance "
        "role's policy: s3:GetObject/ListBucket on the input, s3:PutObject/DeleteObject on the output).",
        True,
    ),
    (
        r"NoSuchBucket|UnknownStoreException|Bucket .* does not exist",
        "The bucket of {uri} does not exist (or is in another account/region). Check the URI in "
        "INPUT_DATA / OUTPUT_DATA or --input / --output.",
        True,
    ),
    (
        r"UnknownHostException|Connection refused|ConnectException|SdkClientException: Unable to execute HTTP"
        r"|EndpointConnectionError|Could not connect to the endpoint",
        "Cannot reach S3 for {uri}. Check [S3] ENDPOINT in dl.cfg (empty for AWS) and the network.",
        True,
    ),
    (
        r"NoAwsCredentialsException|No AWS Credentials|Unable to load AWS credentials|NoCredentialsError",
        "No AWS credentials were found for {uri}. Set [AWS] keys in dl.cfg, the AWS_* variables, "
        "or run where an instance role provides them.",
        True,
    ),
    (
        r"System memory \d+ must be at least \d+",
        "The Spark driver's heap is too small for Spark to start (it needs about 450 MiB): raise "
        "[SPARK] DRIVER_MEMORY in dl.cfg (e.g. 3g) or spark-submit's --driver-memory.",
        False,
    ),
    (
        r"PATH_NOT_FOUND|Path does not exist|FileNotFoundException",
        "A path was not found: {uri}. Check INPUT_DATA / --input; it must hold song_data/ and log_data/.",
        False,
    ),
    (
        r"Permission denied|AccessControlException|Mkdirs failed|ReadOnlyFileSystem|Read-only file system",
        "Cannot write to {uri}: permission denied. Choose a writable OUTPUT_DATA / --output.",
        False,
    ),
)

# A fatal Java error in the JVM's error log or in an error's text, e.g. java.lang.StackOverflowError.
_FATAL = re.compile(r"\bjava\.lang\.(OutOfMemoryError|StackOverflowError|InternalError|VirtualMachineError)\b[^\n]*")
_ADVICE = {
    "OutOfMemoryError": "The JVM ran out of heap. Raise [SPARK] DRIVER_MEMORY in dl.cfg (a local run's tasks run "
    "in the driver's heap), or on a cluster spark-submit's --driver-memory / --executor-memory.",
    "StackOverflowError": "A task went deeper than a JVM thread's stack allows (e.g. one task reading thousands "
    "of files). Run again with --verbose for the Java stack, and report it with the run report.",
}
_SIGNALS = {9: "SIGKILL", 15: "SIGTERM", 6: "SIGABRT", 11: "SIGSEGV"}
EXIT_JVM_DIED = 4
# The exit status of a JVM started with -XX:+ExitOnOutOfMemoryError (session.driver_java_options)
# when its heap ran out; it prints "Terminating due to java.lang.OutOfMemoryError: ..." to stderr.
JVM_EXIT_OUT_OF_MEMORY = 3


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


AWS_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with the given secrets and anything shaped like an AWS access key id masked (a record shown in a
    report may quote anything)."""
    return AWS_ACCESS_KEY.sub("***", redact(text, [s for s in secrets if len(s) >= 4]))


def note_stage(exc: BaseException, name: str) -> None:
    """Remember the innermost stage an exception passed through (for the error message)."""
    if getattr(exc, "sparkify_stage", None) is None:
        try:
            exc.sparkify_stage = name  # type: ignore[attr-defined]
        except AttributeError:
            pass


def exception_chain(exc: BaseException) -> List[BaseException]:
    """The exception and those it was raised while handling (``__cause__``/``__context__``)."""
    found: List[BaseException] = []
    current: Optional[BaseException] = exc
    while current is not None and all(current is not e for e in found):
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def stage_of(exc: BaseException) -> Optional[str]:
    """The stage noted on the exception, or on one it was raised while handling."""
    return next((e.sparkify_stage for e in exception_chain(exc) if getattr(e, "sparkify_stage", None)), None)


def _chain_text(exc: BaseException) -> str:
    """The text of an exception and of those it was raised while handling, Java class names included."""
    parts = []
    for current in exception_chain(exc):
        parts.append(f"{type(current).__name__}: {current}")
        java = getattr(current, "java_exception", None)
        if java is not None:
            try:
                parts.append(f"{java.getClass().getName()}: {java.toString()}")
            except Exception:  # the JVM may be gone
                pass
    return "\n".join(parts)


def jvm_failure(exc: BaseException, exit_code: Optional[int], jvm_log: str = "") -> Optional[str]:
    """One paragraph when the Spark JVM died (``exit_code`` not None: its exit status, negative
    for a signal) or ran out of memory, naming the Java error, the stage and what to try."""
    if exit_code == JVM_EXIT_OUT_OF_MEMORY:
        jvm_log += "\njava.lang.OutOfMemoryError (the JVM exits on its first one: -XX:+ExitOnOutOfMemoryError)"
    fatal = _FATAL.search(_chain_text(exc)) or _FATAL.search(jvm_log)
    if exit_code is None and fatal is None:
        return None
    where = f" during '{stage_of(exc)}'" if stage_of(exc) else ""
    if exit_code is None:
        head = f"Spark failed{where}: {fatal.group(0).strip()}."  # type: ignore[union-attr]
    elif exit_code < 0:
        signal = _SIGNALS.get(-exit_code, f"signal {-exit_code}")
        head = f"The Spark JVM was killed ({signal}){where}" + (f", after {fatal.group(0).strip()}." if fatal else ".")
    else:
        cause = fatal.group(0).strip() if fatal else "no Java error was logged"
        head = f"The Spark JVM died{where} (exit code {exit_code}): {cause}."
    if fatal:
        advice = _ADVICE.get(fatal.group(1), "Run again with --verbose for the Java stack.")
    elif exit_code is not None and exit_code < 0:
        advice = (
            "Something outside the job ended it: a user or a supervisor, or the operating system's "
            "out-of-memory killer when the machine ran out of memory (see `dmesg`). If memory is short, lower "
            "[SPARK] DRIVER_MEMORY or run on a larger machine. The output keeps its previous tables; run again."
        )
    else:
        advice = "Run again with --verbose for the JVM's own messages."
    return f"{head} {advice}"


def first_line(exc: BaseException) -> str:
    """The line that says what failed: for an error py4j raised (``An error occurred while calling o91.sql.``), the
    Java exception's first line after it (``org.apache...Exception: what the library said``); else the first."""
    lines = str(exc).splitlines() or [type(exc).__name__]
    java = [line[2:] for line in lines[1:] if line.startswith(": ")]
    return java[0] if lines[0].startswith("An error occurred while calling") and java else lines[0]


def explain(exc: BaseException, secrets: Iterable[str] = ()) -> Optional[str]:
    """A one-paragraph explanation of a Spark/Java failure we recognise, or None."""
    text = _chain_text(exc)
    for pattern, message, needs_s3 in _KNOWN:
        if re.search(pattern, text) and (not needs_s3 or _S3_URI.search(text) or "S3A" in text):
            found = _URI.search(text)
            return redact(message.format(uri=found.group(0) if found else "the input or output"), secrets)
    return None
