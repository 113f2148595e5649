"""The owner's memory of the people in their photos, so photos protected one at a time move as a set would.

DP2-VL pushes each photo away from its person's centroid. Protected together, a set has one; protected one per call
(a photo booth, a watch folder, a darktable export), a photo only has itself, and the shift it gets is far less
coherent: the one-by-one run kept 72-78 % of the affiliations where the set kept 37-42 % (issue 14, goal 5). This
memory keeps, per person it has seen, the running sum of the unit clean embeddings under each encoder, and gives each
new photo its person's centroid (the photo included). "Same person" is decided by the face-identity encoder's cosine
to the stored centroids; a photo that matches nobody starts a new person. With it (and draws seeded per photo), the
one-by-one run keeps 47-51 % at 10 steps, 16-19 % at 20 (docs/photo_guard.md).

It holds face embeddings, which are biometric: it lives only in the owner's private state folder (``people.pt``,
mode 0600, beside the owner secret; :func:`photo_guard.owner_state.state_dir`), never in a folder meant to be
shared, and deleting the file forgets everyone. It is read with ``weights_only=True`` (tensors only, no code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from guard_core.atomic import atomic_output

from .encoders import Encoder
from .errors import PhotoGuardError

__all__ = ["PeopleMemory", "people_memory", "SAME_PERSON_COS", "PEOPLE_FILE"]

PEOPLE_FILE = "people.pt"  # in the owner's private state folder

#: Cosine between a photo's centred face-identity embedding and a person's centroid from which on it is that person.
#: SFace on 240 LFW photos of 40 people arriving one by one (benchmarks/photo_people.py): pairs of the same person
#: 0.59 median (5 % below 0.36), of different people 0.00 (95 % below 0.16); at 0.40, 2.9 % of the photos were filed
#: with another person's and 5.8 % apart from their own (0.35: 7.9 % / 3.3 %; 0.50: 2.9 % / 15.8 %).
SAME_PERSON_COS = 0.40


@dataclass
class PeopleMemory:
    """Running centroids of the people seen, per encoder: ``sums[e] [P, D]`` of unit embeddings, ``counts[e] [P]``.

    ``match`` names the encoder whose cosine decides who a photo shows; ``path`` is where :meth:`save` writes
    (None: in memory only, as the evaluation's simulated owners use it).
    """

    match: str
    path: Path | None = None
    threshold: float = SAME_PERSON_COS
    sums: dict[str, Tensor] = field(default_factory=dict)
    counts: dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, match: str, threshold: float = SAME_PERSON_COS) -> PeopleMemory:
        """The memory stored at ``path`` (an empty one when there is no file yet)."""
        path = Path(path)
        memory = cls(match, path, threshold)
        if not path.exists():
            return memory
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            sums, counts = state["sums"], state["counts"]
            if not all(isinstance(t, Tensor) for t in [*sums.values(), *counts.values()]):
                raise TypeError("not tensors")
        except Exception as exc:  # any unreadable file (torch's own messages span many lines): one line
            reason = type(exc).__name__
            raise PhotoGuardError(f"{path}: not a photo_guard people memory ({reason}); delete it to forget") from exc
        memory.sums, memory.counts = dict(sums), dict(counts)
        return memory

    @property
    def people(self) -> int:
        return int(self.counts[self.match].shape[0]) if self.match in self.counts else 0

    def assign(self, clean: dict[str, Tensor]) -> dict[str, Tensor]:
        """Add photos to the memory and return each one's person centroid per encoder, ``[N, D]``.

        ``clean``: per encoder name, the photos' centred clean embeddings ``[N, D]`` (``match`` among them). All the
        photos are filed before any centroid is read, so a set of one person protected together gets the set's
        centroid, as without a memory.
        """
        if self.match not in clean:
            raise PhotoGuardError(f"people memory matches on {self.match!r}, which is not among the encoders")
        persons = []
        for i in range(clean[self.match].shape[0]):
            persons.append(self.identify(clean[self.match][i]))
            for name, z in clean.items():
                self._add(name, persons[-1], F.normalize(z[i].detach().cpu().float(), dim=-1))
        return {name: F.normalize(self.sums[name][persons], dim=-1).to(z.device, z.dtype) for name, z in clean.items()}

    def save(self) -> None:
        """Write the memory to ``path`` atomically, mode 0600 (no-op for an in-memory one)."""
        if self.path is None:
            return
        with atomic_output(self.path, mode=0o600) as tmp:
            torch.save({"sums": self.sums, "counts": self.counts}, tmp)

    def identify(self, z: Tensor) -> int:
        """Index of the stored person a photo's ``match`` embedding ``z [D]`` shows, or the next index (a new one)."""
        u = F.normalize(z.detach().cpu().float(), dim=-1)
        if self.people:
            cos = F.normalize(self.sums[self.match], dim=-1) @ u
            best = int(cos.argmax())
            if float(cos[best]) >= self.threshold:
                return best
        return self.people

    def _add(self, name: str, person: int, u: Tensor) -> None:
        sums = self.sums.get(name, torch.zeros(0, u.shape[-1]))
        counts = self.counts.get(name, torch.zeros(0))
        if sums.shape[-1] != u.shape[-1]:
            raise PhotoGuardError(f"people memory: {name} embeddings changed size ({sums.shape[-1]} -> {u.shape[-1]})")
        grow = person + 1 - sums.shape[0]
        if grow > 0:  # a new person, or an encoder added since this person was first seen
            sums = torch.cat([sums, torch.zeros(grow, u.shape[-1])])
            counts = torch.cat([counts, torch.zeros(grow)])
        sums[person] += u
        counts[person] += 1
        self.sums[name], self.counts[name] = sums, counts


def people_memory(encoders: Sequence[Encoder], path: Path | None) -> PeopleMemory | None:
    """The memory stored at ``path`` (None: a fresh one in memory), matching on the first face-identity encoder among
    ``encoders``; None when there is no face encoder to tell people apart with."""
    face = next((e.name for e in encoders if e.face), None)
    if face is None:
        return None
    return PeopleMemory.load(path, face) if path is not None else PeopleMemory(face)
