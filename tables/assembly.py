"""Partial-file bookkeeping and the generation policy, as plain code.

One :class:`AssemblyState` per file identity says which generation is being
assembled (or was last completed), what the whole file must look like, and which
chunks have arrived.  :func:`decide` is the whole policy for an incoming chunk;
the reassembly agent only carries out what it returns.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field

import orjson

from models import bounds
from models.chunk import HASH_NAME, FileChunk
from tables.chunk_set import ChunkSet


class Status(str, enum.Enum):
    ASSEMBLING = "assembling"
    COMPLETED = "completed"
    FAILED = "failed"


class Action(str, enum.Enum):
    START = "start"  # first chunk ever seen for this file
    STORE = "store"  # a chunk the current assembly still needs
    DUPLICATE = "duplicate"  # already stored, or its generation is already finished
    RESET = "reset"  # a newer generation: discard the old payloads, adopt this one
    STALE = "stale"  # an older (or indeterminate) generation: skip
    CORRUPT = "corrupt"  # contradicts what this generation is known to be: reject


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""


@dataclass
class AssemblyState:
    generation: int | None
    file_hash: str
    file_size: int | None  # None: unknown until complete (see FileChunk.file_size)
    chunk_count: int
    partition: int
    first_chunk_at: float
    last_chunk_at: float
    mtime: float | None = None
    # Increments on every reset, and names the spooled payloads, so a new generation's
    # chunks can never be mistaken for the old one's leftovers.
    epoch: int = 0
    status: Status = Status.ASSEMBLING
    received: ChunkSet = field(default_factory=ChunkSet)
    # The length of every chunk but the last (models.bounds); None until a chunk shows it.
    chunk_length: int | None = None
    rejected_chunks: int = 0
    reason: str | None = None
    finished_at: float | None = None
    hash_name: str = HASH_NAME  # states stored before OpenMSIStream records were read are all SHA-256

    @classmethod
    def begin(cls, chunk: FileChunk, partition: int, now: float, epoch: int = 0) -> AssemblyState:
        return cls(
            generation=chunk.generation,
            file_hash=chunk.file_hash,
            file_size=chunk.file_size,
            chunk_count=chunk.chunk_count,
            partition=partition,
            first_chunk_at=now,
            last_chunk_at=now,
            mtime=chunk.mtime,
            epoch=epoch,
            chunk_length=chunk_length_of(chunk),
            hash_name=chunk.hash_name,
        )

    @property
    def received_count(self) -> int:
        return len(self.received)

    def has(self, index: int) -> bool:
        return index in self.received

    def mark(self, index: int, now: float, chunk_length: int | None = None) -> None:
        """Chunk ``index`` arrived; ``chunk_length`` (what it implies, see chunk_length_of) fills in the layout."""
        self.received.add(index)
        if self.chunk_length is None:
            self.chunk_length = chunk_length
        self.last_chunk_at = now

    def unmark(self, index: int) -> None:
        self.received.discard(index)

    def received_indices(self) -> list[int]:
        return list(self.received)

    @property
    def complete(self) -> bool:
        return self.status is Status.ASSEMBLING and self.received_count == self.chunk_count

    def finish(self, status: Status, now: float, reason: str | None = None) -> None:
        """Completed or failed: which chunks arrived no longer matters; the identity of the generation does."""
        self.status = status
        self.reason = reason
        self.finished_at = now
        self.received = ChunkSet()

    def dumps(self) -> bytes:
        data = asdict(self)
        data["status"] = self.status.value
        data["received"] = self.received.to_list()
        return orjson.dumps(data)

    @classmethod
    def loads(cls, raw: bytes) -> AssemblyState:
        data = orjson.loads(raw)
        data["status"] = Status(data["status"])
        data["received"] = ChunkSet.from_list(data["received"])
        return cls(**data)


def chunk_length_of(chunk: FileChunk) -> int | None:
    return bounds.chunk_length_of(
        chunk_count=chunk.chunk_count, index=chunk.index, offset=chunk.offset, length=len(chunk.payload)
    )


def decide(state: AssemblyState | None, chunk: FileChunk) -> Decision:
    """What to do with a chunk whose own hash is already verified.

    With generation numbers on both sides, the higher generation wins.  Without
    them (records from uploaders that do not number generations), the directional
    policy of OpenMSIStream's ``DownloadDataFile._apply_generation_policy``:
    same file hash → accept; different hash and strictly more chunks → reset and
    adopt; different hash, equal chunk counts and a strictly newer mtime on both
    sides → reset and adopt; any other different hash → skip; same hash but a
    different chunk count → corruption.
    """
    if state is None:
        return Decision(Action.START)
    if chunk.generation is not None and state.generation is not None:
        if chunk.generation > state.generation:
            return Decision(Action.RESET, f"generation {chunk.generation} supersedes {state.generation}")
        if chunk.generation < state.generation:
            return Decision(Action.STALE, f"generation {chunk.generation} is older than {state.generation}")
        if (chunk.file_hash, chunk.chunk_count, chunk.file_size) != (
            state.file_hash,
            state.chunk_count,
            state.file_size,
        ):
            return Decision(Action.CORRUPT, f"generation {chunk.generation} arrived with two different contents")
        return _same_generation(state, chunk)
    if chunk.file_hash == state.file_hash:
        if chunk.chunk_count != state.chunk_count or chunk.file_size != state.file_size:
            return Decision(
                Action.CORRUPT,
                f"same file hash with {chunk.chunk_count} chunks / {chunk.file_size} bytes, "
                f"expected {state.chunk_count} chunks / {state.file_size} bytes",
            )
        if state.status is Status.FAILED:
            # Without generation numbers a re-send of the same content is the only way to retry.
            return Decision(Action.RESET, f"re-sent after the previous attempt failed: {state.reason}")
        return _same_generation(state, chunk)
    if chunk.chunk_count > state.chunk_count:
        return Decision(Action.RESET, f"new content with more chunks ({chunk.chunk_count} > {state.chunk_count})")
    if chunk.chunk_count == state.chunk_count:
        if _strictly_newer(chunk.mtime, state.mtime):
            return Decision(Action.RESET, f"new content, as many chunks, newer mtime ({chunk.mtime} > {state.mtime})")
        return Decision(
            Action.STALE, f"different content, as many chunks, mtime {chunk.mtime} not newer than {state.mtime}"
        )
    return Decision(
        Action.STALE, f"different content with {chunk.chunk_count} chunks, fewer than the current {state.chunk_count}"
    )


def _strictly_newer(mtime: float | None, than: float | None) -> bool:
    """OpenMSIStream's tie-break: only two known mtimes decide; an unknown one never wins."""
    return mtime is not None and than is not None and mtime > than


def _same_generation(state: AssemblyState, chunk: FileChunk) -> Decision:
    if state.status is not Status.ASSEMBLING or state.has(chunk.index):
        return Decision(Action.DUPLICATE)
    length = chunk_length_of(chunk)
    if state.chunk_length is not None and length is not None and length != state.chunk_length:
        return Decision(
            Action.CORRUPT, f"chunk {chunk.index} implies chunks of {length} bytes, the others {state.chunk_length}"
        )
    return Decision(Action.STORE)


def expired(state: AssemblyState, partition: int, now: float, timeout: float) -> bool:
    """A partial file of ``partition`` that received no chunk for ``timeout`` seconds."""
    return state.partition == partition and state.status is Status.ASSEMBLING and now - state.last_chunk_at > timeout
