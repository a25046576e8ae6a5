"""The progress line: records done of the (estimated) total, the rate, the files."""

from __future__ import annotations

import io

from local_endpoint.transform.progress import Progress


def test_progress_shows_records_done_of_the_total_and_the_rate() -> None:
    stream = io.StringIO()
    progress = Progress(True, files=2, total_bytes=3_000, stream=stream)
    progress.input_read(1_000, 10)
    assert progress.total() == (30, False)  # the unread 2,000 bytes estimated at 100 bytes a record
    progress.advance(10)
    progress.file_done(failed=False)
    progress.input_read(2_000, 25)
    progress.advance(25, failed=True)
    progress.file_done(failed=True)
    progress.close()
    assert progress.total() == (35, True)
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("transform: 35/35 records (100%), ")
    assert "records/s, files 2/2, 1 failed" in last
