"""What a chunk header may claim: its fields checked against each other and against hard limits.

A header comes off the wire and describes a file nobody has seen yet, so before any state
exists for it the decoder checks that its numbers can describe a real file cut into chunks
the way every uploader cuts them: all chunks of one length ``L`` but the last, which is at
most ``L`` long, chunk ``i`` at byte ``i * L``; so ``chunk_count = ceil(file_size / L)``,
and a file of ``chunk_count`` chunks is at least ``(chunk_count - 1) * L + 1`` bytes long.
A header that claims 10^12 chunks must then also claim a file of at least 10^12 bytes,
which :attr:`ChunkLimits.max_file_size` refuses.  Records without a file size (OpenMSIStream's)
are held to the same layout, with the file's end bounded by the same limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from errors import RecordError


class ChunkBoundsError(RecordError, ValueError):
    """A header whose numbers cannot describe a chunk of a real file."""


@dataclass(frozen=True)
class ChunkLimits:
    max_payload_bytes: int  # the most payload one record can carry to the worker
    max_file_size: int  # the largest file a worker accepts (FILESTREAM_MAX_FILE_SIZE)


def check_layout(
    *,
    file_size: int | None,
    chunk_count: int,
    index: int,
    offset: int,
    length: int,
    limits: ChunkLimits,
) -> None:
    """Raise :class:`ChunkBoundsError` saying why the header cannot describe a chunk of a real file."""
    if chunk_count < 1:
        raise ChunkBoundsError(f"chunk_count {chunk_count} < 1")
    if not 0 <= index < chunk_count:
        raise ChunkBoundsError(f"chunk index {index} outside 0..{chunk_count - 1}")
    if offset < 0 or length < 0:
        raise ChunkBoundsError(f"negative offset {offset} or length {length}")
    if length > limits.max_payload_bytes:
        raise ChunkBoundsError(f"chunk of {length} bytes, more than a record carries ({limits.max_payload_bytes})")
    if file_size is not None:
        _check_size(file_size, offset, length, limits)
    elif offset + length > limits.max_file_size:
        raise ChunkBoundsError(f"chunk ends at byte {offset + length}, past the largest file ({limits.max_file_size})")
    if chunk_count == 1:
        if offset != 0 or (file_size is not None and length != file_size):
            raise ChunkBoundsError(f"the only chunk of the file must hold all of it from byte 0 (offset {offset})")
        return
    last = index == chunk_count - 1
    chunk_length = offset // index if last else length
    if chunk_length < 1 or length < 1:
        raise ChunkBoundsError(f"an empty chunk {index} of a file of {chunk_count} chunks")
    if offset != index * chunk_length or length > chunk_length:
        raise ChunkBoundsError(f"chunk {index} at byte {offset} with {length} bytes breaks chunks of equal length")
    # The file holds chunk_count - 1 whole chunks and at least one byte more.
    least_size = (chunk_count - 1) * chunk_length + 1
    if least_size > limits.max_file_size:
        raise ChunkBoundsError(
            f"{chunk_count} chunks of {chunk_length} bytes make a file of at least {least_size} bytes, "
            f"more than the largest file accepted ({limits.max_file_size})"
        )
    if file_size is not None:
        if -(-file_size // chunk_length) != chunk_count:
            raise ChunkBoundsError(
                f"{chunk_count} chunks of {chunk_length} bytes cannot make a file of {file_size} bytes"
            )
        if last and offset + length != file_size:
            raise ChunkBoundsError(f"the last chunk ends at byte {offset + length}, not at the file's end {file_size}")


def chunk_length_of(*, chunk_count: int, index: int, offset: int, length: int) -> int | None:
    """The common chunk length ``L`` a checked header implies; None for a file of one chunk."""
    if chunk_count == 1:
        return None
    return offset // index if index == chunk_count - 1 else length


def _check_size(file_size: int, offset: int, length: int, limits: ChunkLimits) -> None:
    if file_size < 0:
        raise ChunkBoundsError(f"negative file size {file_size}")
    if file_size > limits.max_file_size:
        raise ChunkBoundsError(f"a file of {file_size} bytes, more than the largest accepted ({limits.max_file_size})")
    if offset + length > file_size:
        raise ChunkBoundsError(f"chunk at byte {offset} with {length} bytes extends past the end of {file_size}")
