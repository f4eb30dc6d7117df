#!/usr/bin/env python3
"""Compile the WordNet 3.0 database (Debian package wordnet-base) into the
compact lexicon the built-in embedder loads (src/discovery/lexicon.c).

Output, one record per line, text:
  S<TAB>h1 h2...<TAB>d1 d2...   synset i (i counts S lines from 0): its
                                hypernyms (both "@" and instance "@i") and
                                derivationally related synsets ("+")
  L<TAB>lemma<TAB>id.rank ...   a lemma ("_" joins the words of a
                                collocation) and its senses, most frequent
                                first within each part of speech (rank 0..)

Only lemmas of letters (and "_", "-") with at most three words are kept, at
most MAX_SENSES senses per part of speech. Synsets within GENERAL_DEPTH of a
root of the hypernym tree ("entity", "act", "abstraction"...) say nothing
about a capability and are left out of every hypernym list.
usage: wordnet-lexicon.py WORDNET_DIR > lexicon.txt
"""
import re
import sys

MAX_SENSES = 3
GENERAL_DEPTH = 3
POS = [("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r")]
LEMMA_RE = re.compile(r"^[a-z][a-z_-]*$")


def read_data(d):
    syn = {}  # (pos, offset) -> (hypernyms, derivations)
    for name, p in POS:
        with open(f"{d}/data.{name}", encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                t = line.split(" ")
                off, ptype = t[0], t[2]
                ptype = "a" if ptype == "s" else ptype
                nw = int(t[3], 16)
                i = 4 + 2 * nw
                np_ = int(t[i])
                i += 1
                hyp, der = [], []
                for _ in range(np_):
                    sym, toff, tpos = t[i], t[i + 1], t[i + 2]
                    tpos = "a" if tpos == "s" else tpos
                    if sym in ("@", "@i"):
                        hyp.append((tpos, toff))
                    elif sym == "+":
                        der.append((tpos, toff))
                    i += 4
                syn[(ptype, off)] = (hyp, der)
    return syn


def depths(syn):
    memo = {}

    def depth(k, seen=()):
        if k in memo:
            return memo[k]
        hyp = [h for h in syn.get(k, ([], []))[0] if h not in seen]
        v = 0 if not hyp else 1 + min(depth(h, seen + (k,)) for h in hyp)
        memo[k] = v
        return v

    sys.setrecursionlimit(10000)
    return {k: depth(k) for k in syn}


def main():
    d = sys.argv[1]
    syn = read_data(d)
    dep = depths(syn)
    lemmas = []
    for name, p in POS:
        with open(f"{d}/index.{name}", encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                t = line.split()
                lemma = t[0]
                if not LEMMA_RE.match(lemma) or lemma.count("_") > 2 or len(lemma) > 40:
                    continue
                ncnt = int(t[2])
                offs = t[-ncnt:][:MAX_SENSES]
                lemmas.append((lemma, [(p, o, r) for r, o in enumerate(offs)]))
    used = {}
    order = []

    def sid(k):
        if k not in used:
            used[k] = len(order)
            order.append(k)
        return used[k]

    out_l = []
    merged = {}
    for lemma, senses in lemmas:
        merged.setdefault(lemma, []).extend(senses)
    for lemma in sorted(merged):
        parts = [f"{sid((p, o))}.{r}" for p, o, r in merged[lemma]]
        out_l.append(f"L\t{lemma}\t{' '.join(parts)}")
    # close over hypernyms up to three levels and derivations
    i = 0
    lines = []
    while i < len(order):
        k = order[i]
        hyp, der = syn.get(k, ([], []))
        hs = [sid(h) for h in hyp if dep.get(h, 0) > GENERAL_DEPTH]
        ds = [sid(x) for x in der]
        lines.append((hs, ds))
        i += 1
    w = sys.stdout.write
    for hs, ds in lines:
        w(f"S\t{' '.join(map(str, hs))}\t{' '.join(map(str, ds))}\n")
    for line in out_l:
        w(line + "\n")


main()
