"""Shoppers over real HTTP: purchases (some with an Idempotency-Key, retried with the same body
after no answer or a 5xx, or sent twice on purpose), quantities 1..limit+1, and cancels. Every
answer is recorded; the checker decides what the answers promised."""

import http.client
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Shopper:
    user_id: str
    token: str


@dataclass(frozen=True)
class DealInfo:
    deal_id: str
    product_id: str
    per_user_limit: int


@dataclass
class Attempt:
    """One purchase request and what came back (status None: no answer, a connection error)."""

    deal_id: str
    user_id: str
    quantity: int
    key: str | None
    started: float
    ended: float = 0.0
    status: int | None = None
    order_id: str | None = None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status in (201, 202) and self.order_id is not None

    @property
    def unanswered(self) -> bool:
        return self.status is None or self.status >= 500


def call(
    base_url: str, method: str, path: str, *, token: str, body: dict | None = None,
    key: str | None = None, timeout: float = 15.0,
) -> tuple[int | None, dict | None, str | None]:  # fmt: skip
    """(status, JSON body, error): a fresh connection per request, as a phone's app would."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    try:
        conn.request(method, path, body=json.dumps(body or {}), headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        return None, None, exc.__class__.__name__
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw) if raw else None, None
    except ValueError:
        return resp.status, None, "not JSON"


@dataclass
class Traffic:
    """Shopper threads and one canceller, until `stop` is set. `burst`: every thread buys for
    the same shopper at the same moment (the negative control's limit race)."""

    base_url: str
    seed: int
    shoppers: list[Shopper]
    deals: list[DealInfo]
    threads: int = 6
    burst: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    attempts: list[Attempt] = field(default_factory=list)
    cancels: dict[str, int | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)
    # Keys are unique per shopper across runs too: the shoppers and their orders outlive a run,
    # and a key one of them used before belongs to that earlier order (IDEMPOTENCY_KEY_REUSED).
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def start(self) -> None:
        barrier = threading.Barrier(self.threads) if self.burst else None
        for i in range(self.threads):
            rng = random.Random(f"{self.seed}-shopper-{i}")
            self._workers.append(threading.Thread(target=self._shop, args=(i, rng, barrier)))
        if not self.burst:
            rng = random.Random(f"{self.seed}-canceller")
            self._workers.append(threading.Thread(target=self._cancel, args=(rng,)))
        for t in self._workers:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self._workers:
            t.join()

    def _buy(self, shopper: Shopper, deal: DealInfo, quantity: int, key: str | None) -> Attempt:
        attempt = Attempt(deal.deal_id, shopper.user_id, quantity, key, time.monotonic())
        body = {
            "items": [
                {"product_id": deal.product_id, "deal_id": deal.deal_id, "quantity": quantity}
            ]
        }
        status, answer, error = call(
            self.base_url, "POST", "/orders", token=shopper.token, body=body, key=key
        )
        attempt.ended, attempt.status, attempt.error = time.monotonic(), status, error
        if status in (201, 202) and answer:
            attempt.order_id = answer.get("id")
        with self.lock:
            self.attempts.append(attempt)
        return attempt

    def _shop(self, i: int, rng: random.Random, barrier: threading.Barrier | None) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            if barrier is not None:
                shopper = self.shoppers[n % len(self.shoppers)]
                deal = self.deals[n % len(self.deals)]
                try:
                    barrier.wait(timeout=5)
                except threading.BrokenBarrierError:
                    return
                self._buy(shopper, deal, 1, None)
                continue
            shopper, deal = rng.choice(self.shoppers), rng.choice(self.deals)
            quantity = rng.randint(1, deal.per_user_limit + 1)
            key = f"chaos-{self.nonce}-{self.seed}-{i}-{n}" if rng.random() < 0.5 else None
            attempt = self._buy(shopper, deal, quantity, key)
            if key:
                retries = 0
                while attempt.unanswered and retries < 3 and not self.stop.is_set():
                    retries += 1
                    time.sleep(rng.uniform(0.1, 0.5))
                    attempt = self._buy(shopper, deal, quantity, key)
                if attempt.accepted and rng.random() < 0.3:
                    self._buy(shopper, deal, quantity, key)  # a retry whose answer was lost
            time.sleep(rng.uniform(0.02, 0.2))  # a few purchases a second per thread

    def _cancel(self, rng: random.Random) -> None:
        tokens = {s.user_id: s.token for s in self.shoppers}
        while not self.stop.wait(rng.uniform(0.2, 0.6)):
            with self.lock:
                candidates = sorted({(a.order_id, a.user_id) for a in self.attempts if a.accepted})
            candidates = [c for c in candidates if c[0] not in self.cancels]
            if not candidates:
                continue
            order_id, user_id = rng.choice(candidates)
            status, _, _ = call(
                self.base_url, "POST", f"/orders/{order_id}/cancel", token=tokens[user_id],
                body={"reason": "chaos"},
            )  # fmt: skip
            self.cancels[str(order_id)] = status
