"""Replicas from the tier URLs: one per URL, or one per address of a host name that resolves to
several (a Kubernetes headless Service, compose ``deploy.replicas``), re-resolved in the
background so replicas that come and go are followed.

A host name with one address stays as written (its replica is labelled ``vllm:8000``, not by an
address that changes when the container is re-created). Resolution runs beside the request
path, never on it; when it fails (DNS not ready yet, a name briefly gone), the tier keeps the
replicas it has.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

from .tiers import Replica, TierRuntime

log = logging.getLogger("adaptive_router.discovery")


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def with_address(url: str, address: str) -> str:
    """``url`` with its host replaced by ``address`` (bracketed when IPv6)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def resolve(url: str) -> list[str]:
    """The replica URLs one configured URL stands for now."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_address(host):
        return [url]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = sorted({str(info[4][0]) for info in infos})
    if len(addresses) <= 1:
        return [url]
    return [with_address(url, address) for address in addresses]


async def resolve_all(urls: Iterable[str]) -> list[str] | None:
    """Every replica URL of a tier, or None when a name could not be resolved."""
    out: list[str] = []
    for url in urls:
        try:
            out.extend(await resolve(url))
        except OSError as exc:
            log.warning("cannot resolve %s (%s): keeping the current replicas", url, exc)
            return None
    return list(dict.fromkeys(out))


def reconcile(
    tier: TierRuntime, urls: Sequence[str], make: Callable[[str], Replica]
) -> list[Replica]:
    """Set the tier's replicas to ``urls``, keeping the state of the ones that stay; returns the
    replicas that left (their connections are closed by the caller)."""
    current = {replica.url: replica for replica in tier.replicas}
    if list(current) == list(urls):
        return []
    replicas = [current.get(url) or make(url) for url in urls]
    gone = [replica for url, replica in current.items() if url not in set(urls)]
    tier.set_replicas(replicas)
    log.info("%s: replicas %s", tier.name, ", ".join(replica.label for replica in replicas))
    return gone


async def refresh(
    tier: TierRuntime, configured: Sequence[str], make: Callable[[str], Replica]
) -> None:
    """Resolve the tier's configured URLs again and follow what changed."""
    urls = await resolve_all(configured)
    if not urls:
        return
    for replica in reconcile(tier, urls, make):
        await replica.pool.aclose()
