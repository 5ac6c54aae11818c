import io
import json
import logging
import logging.config

import pytest

from logs import file_fields, logging_config
from models.identity import FileId


def test_file_fields_name_the_file_and_what_the_call_site_knows():
    file_id = FileId("lab", "run 7/scan.tif")
    assert file_fields(file_id) == {"file": "lab/run 7/scan.tif"}
    assert file_fields(file_id, 1763712000000000, 3) == {
        "file": "lab/run 7/scan.tif",
        "generation": 1763712000000000,
        "partition": 3,
    }
    assert file_fields("lab/x", partition=0) == {"file": "lab/x", "partition": 0}


def test_text_keeps_fausts_own_configuration_and_an_unknown_format_is_refused():
    assert logging_config("text") is None
    with pytest.raises(ValueError, match="json"):
        logging_config("xml")


def test_json_configuration_writes_one_object_per_line_with_the_file_fields(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    config = logging_config("json")
    assert config.pop("merge") is True  # mode merges it into its own, whose root logger has the -l level
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        logging.config.dictConfig({**config, "root": {"level": "INFO", "handlers": ["default"]}})
        log = logging.getLogger("agents.reassembly")
        log.info("completed %s", "lab/a.csv", extra=file_fields("lab/a.csv", 17, 2))
        log.warning('odd "quotes"\nand a newline')
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("failed")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    first, second, third = map(json.loads, lines)
    assert first["message"] == "completed lab/a.csv"
    assert (first["level"], first["logger"]) == ("INFO", "agents.reassembly")
    assert (first["file"], first["generation"], first["partition"]) == ("lab/a.csv", 17, 2)
    assert first["time"].endswith("+00:00")
    assert second["message"] == 'odd "quotes"\nand a newline' and "file" not in second
    assert third["level"] == "ERROR" and "RuntimeError: boom" in third["exc_info"]
