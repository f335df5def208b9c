"""Trickle ICE for WHIP/WHEP (RFC 9725 section 4.3): the client's
`application/trickle-ice-sdpfrag` (RFC 8840) read into a value, and the
rule that tells a trickle from an ICE restart.

Pure: parses text, never touches a peer. Must not import aiohttp or
`server/`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp

from kernel.errors import Invalid

MAX_CANDIDATES = 32


class IceRestart(Invalid):
    """New ICE credentials in a PATCH: a restart, which we do not do (422)."""


@dataclass(frozen=True, slots=True)
class Fragment:
    ufrag: str | None
    pwd: str | None
    candidates: tuple[RTCIceCandidate, ...]
    end_of_candidates: bool

    def check_credentials(self, ufrag: str | None, pwd: str | None) -> None:
        """Raise `IceRestart` if the fragment names other credentials than
        the session's (RFC 9725: a restart carries new ice-ufrag/ice-pwd)."""
        if (self.ufrag is not None and self.ufrag != ufrag) or (
            self.pwd is not None and self.pwd != pwd
        ):
            raise IceRestart("ICE restart is not supported; start a new session")


def parse_fragment(text: str, default_mid: str | None) -> Fragment:
    """The credentials and candidates of an SDP fragment; each candidate is
    tagged with the `a=mid` it follows (or `default_mid`)."""
    ufrag = pwd = None
    mid = default_mid
    candidates: list[RTCIceCandidate] = []
    end = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("a=ice-ufrag:"):
            ufrag = line.split(":", 1)[1]
        elif line.startswith("a=ice-pwd:"):
            pwd = line.split(":", 1)[1]
        elif line.startswith("a=mid:"):
            mid = line.split(":", 1)[1]
        elif line.startswith("a=candidate:"):
            candidate = _candidate(line[len("a=candidate:") :], mid)
            if candidate is not None:
                candidates.append(candidate)
        elif line == "a=end-of-candidates":
            end = True
    if len(candidates) > MAX_CANDIDATES:
        raise Invalid(f"at most {MAX_CANDIDATES} candidates in one PATCH")
    return Fragment(ufrag, pwd, tuple(candidates), end)


def _candidate(value: str, mid: str | None) -> RTCIceCandidate | None:
    """The candidate, or None for one we never use (TCP, RTCP component:
    browsers trickle those too; they are skipped, not refused)."""
    try:
        candidate = candidate_from_sdp(value)
    except (AssertionError, ValueError, IndexError) as exc:
        raise Invalid("unreadable ICE candidate") from exc
    if candidate.component != 1 or candidate.protocol.lower() != "udp":
        return None
    candidate.sdpMid = mid
    return candidate
