"""Logging set up in one place: rich console output for people, plain records for files, and no
credentials in either (``redact``)."""

from __future__ import annotations

import logging
import re

from rich.logging import RichHandler

# user:password@ in any URL (postgresql://har:s3cret@db, http://u:p@mlflow), and key=value secrets
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@\s]+)@")
_KEY_VALUE = re.compile(r"(?i)\b(?P<key>password|passwd|secret|token|secret_access_key|"
                        r"aws_secret_access_key|x-amz-signature|signature)(?P<sep>[=:]\s*)(?P<value>[^&\s,;'\"]+)")


def redact(text: str) -> str:
    """``text`` with URL passwords and ``password=…``-style values replaced by ``***``."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _KEY_VALUE.sub(lambda m: f"{m['key']}{m['sep']}***", text)


class RedactingFilter(logging.Filter):
    """Rewrites every record's final message through ``redact`` (arguments included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True

_CONFIGURED = False


def setup_logging(level: str = "INFO") -> None:
    global _CONFIGURED
    if _CONFIGURED:
        logging.getLogger().setLevel(level)
        return
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(rich_tracebacks=False, show_path=False)],
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    # Silence chatty third-party loggers; our own stage messages stay.
    for noisy in ("great_expectations", "urllib3", "matplotlib", "httpx", "httpcore", "botocore", "boto3",
                  "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # MLflow's SQL store logs a traceback for every database error and then raises it as an
    # MlflowException, which har reports in one line (a full disk included): the log is a duplicate.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    _CONFIGURED = True


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
