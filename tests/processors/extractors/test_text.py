"""Text files: instrument header blocks, tables in text files, plain text."""

from __future__ import annotations

from pathlib import Path

from tests.processors.extractors.builders import extract

# --- Text: header blocks, sniffed tables, plain text -------------------------------


def test_text_header_with_colons_and_equals_signs(tmp_path: Path) -> None:
    content = (
        "# XRD export v2.1\n"
        "# Instrument: D8 Advance\n"
        "Sample ID = 007\n"
        "Scan rate [deg/min]: 0.5\n"
        "Steps = 4000\n"
        "Temperature (°C): -12.5\n"
        "Started: 2024-05-01 12:30:00\n"
        "Operator = 'J. Doe'\n"
        'Label = "42"\n'
        "Huge = 123456789012345678901234\n"
        "Exponent: 1e-3\n"
        "Empty:\n"
        "Steps = 9\n"
        "\n"
        "angle,intensity\n"
        "10.0,5\n"
    )
    metadata = extract(tmp_path, "scan.txt", content)
    assert metadata == {
        "content_type": "text/plain",
        "format": "text-header",
        "encoding": "utf-8",
        "header": {
            "Instrument": "D8 Advance",
            "Sample ID": "007",
            "Scan rate [deg/min]": 0.5,
            "Steps": 4000,
            "Temperature (°C)": -12.5,
            "Started": "2024-05-01 12:30:00",
            "Operator": "J. Doe",
            "Label": "42",
            "Huge": "123456789012345678901234",
            "Exponent": 0.001,
            "Empty": "",
        },
        "header_lines": 13,
        "header_truncated": False,
    }


def test_text_header_stops_at_the_first_data_line(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "spectrum.dat", "; Spectrometer = X1\n; gain=2\n400 0.1\n401 0.2\nlate: 1\n")
    assert metadata["format"] == "text-header"
    assert metadata["header"] == {"Spectrometer": "X1", "gain": 2}
    assert metadata["header_lines"] == 2


def test_text_header_is_capped(tmp_path: Path) -> None:
    content = "".join(f"key{i} = {i}\n" for i in range(150))
    metadata = extract(tmp_path, "many.txt", content)
    assert len(metadata["header"]) == 100
    assert metadata["header"]["key99"] == 99
    assert metadata["header_lines"] == 150
    assert metadata["header_truncated"] is True


def test_text_header_in_latin_1(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "old.txt", "Temperatur (°C): 20\nProbe: µ-Kristall\n".encode("latin-1"))
    assert metadata["encoding"] == "latin-1"
    assert metadata["header"] == {"Temperatur (°C)": 20, "Probe": "µ-Kristall"}


def test_text_header_in_utf_16(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "windows.txt", "Instrument: PX\r\nChannels: 4\r\n".encode("utf-16"))
    assert metadata["encoding"] == "utf-16"
    assert metadata["header"] == {"Instrument": "PX", "Channels": 4}


def test_a_text_file_that_is_a_table_is_read_as_one(tmp_path: Path) -> None:
    metadata = extract(tmp_path, "export.txt", "a,b,c\n1,2,3\n4,5,6\n")
    assert metadata["format"] == "csv"
    assert metadata["content_type"] == "text/csv"
    assert metadata["columns"] == ["a", "b", "c"] and metadata["row_count"] == 2
    tabs = extract(tmp_path, "export.dat", "x\ty\n1\t2\n")
    assert tabs["format"] == "tsv" and tabs["content_type"] == "text/tab-separated-values"


def test_plain_text(tmp_path: Path) -> None:
    prose = "This is a note about the run.\nNothing here is a header, nor a table.\n"
    assert extract(tmp_path, "notes.txt", prose) == {
        "content_type": "text/plain",
        "format": "text",
        "encoding": "utf-8",
    }
    assert extract(tmp_path, "notes", prose)["content_type"] == "text/plain"
    assert extract(tmp_path, "page.xml", "<?xml version='1.0'?>\n<a/>\n")["content_type"] == "text/xml"
