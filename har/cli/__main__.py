"""`python -m har.cli …` is `har …`."""

from har.cli import app

app(prog_name="har")
