"""Hypothesis strategies for the targets' inputs: seeds, their structure-aware mutations, and noise.

A mutated input is drawn as (seed, mutation seed, rounds), so hypothesis shrinks towards fewer
rounds and earlier seeds, and the same draw always gives the same bytes for the same seeds.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

from fuzz.mutations import RUN_LENGTHS, RUNS, TOKENS, mutate
from fuzz.seeds import seeds
from fuzz.targets import target as find_target


def inputs(target: str, *, corpus: bool = True) -> st.SearchStrategy[bytes]:
    found = [data for _, data in seeds(target, corpus=corpus)]
    max_len = find_target(target).max_len

    def mutated(seed: bytes, mutation_seed: int, rounds: int) -> bytes:
        rng = random.Random(mutation_seed)  # noqa: S311 - reproducible mutations, not secrets
        data = seed
        for _ in range(rounds):
            data = mutate(data, rng, others=found, max_size=max_len)
        return data

    mutations = st.builds(mutated, st.sampled_from(found), st.integers(0, 2**32 - 1), st.integers(1, 4))
    # A run of one token between a head and a tail: `<!---->` * 27 + `<x/>` froze the parser's
    # HTML sniff, `<a ` + `xmlns:` * N its namespace scan (issue 11).
    runs = st.builds(lambda head, token, count, tail: (head + token * count + tail)[:max_len],
                     st.sampled_from((b"", b"<?xml version='1.0'?>", b"<a ", b"<a>", b"\xef\xbb\xbf")),
                     st.sampled_from(RUNS), st.sampled_from(RUN_LENGTHS),
                     st.sampled_from((b"<x/>", b"", b">", b"<!doctype html>", b"/>", b"</a>")))
    noise = st.one_of(
        st.binary(max_size=512),
        st.lists(st.sampled_from(TOKENS), max_size=12).map(b"".join),
        st.text(max_size=256).map(lambda t: t.encode("utf-8", "surrogatepass")),
        runs,
    )
    # Mutations of real messages find far more than noise does; three draws in four are mutations.
    return st.one_of(mutations, mutations, mutations, noise)
