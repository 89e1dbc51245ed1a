"""kafka_check.py - what the Kafka integration tests assert about topic dumps.

Run with /usr/bin/python3 (standard library only). Inputs are files the tests
write with kcat:

  input   the produced lines, "KEY|JSON" (the key is the event's card_id)
  scores  score records, one per line (kcat -f '%s\\n')
  dlq     dead-letter records, one per line (the event id is read from the
          payload, or from payload_base64 when the payload is not UTF-8)
  inmap   the input topic read back, "PARTITION OFFSET PAYLOAD" per line

Which input line is valid is decided here, independently of rtscore, from the
pipeline's schema (examples/fraud/pipeline.yaml): a UTF-8 JSON object with a
string card_id of at most 64 bytes, a number amount >= 0, and ts, when
present, a number. Event ids are "t-<n>"; the one kind of bad line without an
id ("[1,2]") is counted instead.

Commands (each prints a one-line summary; exit 1 when a check fails):

  verify INPUT SCORES DLQ [--exact] [--alerts ALERTS]
      every valid id is in SCORES and in no DLQ record, every invalid one in a
      DLQ record (by the id in its payload) and not in SCORES; no record for
      an id that was not produced. --exact: each id exactly once. --alerts:
      every alert is a score record with decision block, once.
  crash INPUT INMAP SCORES DLQ RUN1_SCORES RUN1_DLQ OFFSETS BOUND
      after a kill -9 and a restart: nothing missing (as verify); every
      duplicated id had an output before the kill and sits at or after the
      committed offset of its partition (OFFSETS: "P=OFF ..." read right after
      the kill), so duplicates <= outputs written but not committed at the
      kill; and duplicates <= BOUND (commit_interval x rate + in-flight).
  headers DUMP
      DUMP has "KEY<TAB>HEADERS<TAB>VALUE" per score message: the key is the
      record's key and the id header its id.
"""
import base64
import json
import re
import sys

ID_SCORE = re.compile(rb'"id":"(t-[0-9]+)"')
ID_PAYLOAD = re.compile(rb'txn_id\\*"\s*:\s*\\*"(t-[0-9]+)')
ID_INPUT = re.compile(rb'"txn_id":"(t-[0-9]+)"')
PAYLOAD_B64 = re.compile(rb'"payload_base64":"([A-Za-z0-9+/=]*)"')


def valid(line):
    try:
        o = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    if not isinstance(o, dict):
        return False
    card, amount, ts = o.get("card_id"), o.get("amount"), o.get("ts")
    if not isinstance(card, str) or len(card.encode("utf-8")) > 64:
        return False
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
        return False
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float))):
        return False
    return True


def read_input(path):
    """ids of valid and invalid lines, and the count of invalid lines without an id"""
    good, bad, idless = set(), set(), 0
    with open(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\n")
            payload = line.split(b"|", 1)[1] if b"|" in line else line
            m = ID_INPUT.search(payload)
            if valid(payload):
                good.add(m.group(1).decode())
            elif m:
                bad.add(m.group(1).decode())
            else:
                idless += 1
    return good, bad, idless


def count_ids(path, rx):
    """id -> occurrences, and the number of records without an id"""
    counts, none = {}, 0
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            m = rx.search(line)
            b64 = PAYLOAD_B64.search(line) if not m and rx is ID_PAYLOAD else None
            if b64:  # a payload that is not UTF-8 is kept in base64
                m = ID_INPUT.search(base64.b64decode(b64.group(1)))
            if m:
                k = m.group(1).decode()
                counts[k] = counts.get(k, 0) + 1
            else:
                none += 1
    return counts, none


def check_outputs(good, bad, idless, scores, dlq, dlq_idless, exact):
    errs = []
    missing_s = good - scores.keys()
    missing_d = bad - dlq.keys()
    wrong_s = bad & scores.keys()
    wrong_d = good & dlq.keys()
    unknown = (scores.keys() | dlq.keys()) - good - bad
    for what, s in (("valid ids missing from the scores topic", missing_s),
                    ("invalid ids missing from the DLQ topic", missing_d),
                    ("invalid ids scored", wrong_s), ("valid ids dead-lettered", wrong_d),
                    ("ids that were never produced", unknown)):
        if s:
            errs.append("%d %s, e.g. %s" % (len(s), what, sorted(s)[:5]))
    if dlq_idless < idless:
        errs.append("%d bad lines without an id produced, %d DLQ records without one" %
                    (idless, dlq_idless))
    dups = sum(n - 1 for n in scores.values()) + sum(n - 1 for n in dlq.values())
    if exact and (dups or dlq_idless != idless):
        errs.append("%d duplicate outputs (%d id-less DLQ records for %d lines)" %
                    (dups, dlq_idless, idless))
    return errs, dups


def summary(errs, **kv):
    print(" ".join("%s=%s" % (k, v) for k, v in kv.items()))
    for e in errs:
        print("FAIL: " + e, file=sys.stderr)
    return 1 if errs else 0


def cmd_verify(args):
    exact = "--exact" in args
    alerts = args[args.index("--alerts") + 1] if "--alerts" in args else None
    inp, sc, dl = args[0], args[1], args[2]
    good, bad, idless = read_input(inp)
    scores, _ = count_ids(sc, ID_SCORE)
    dlq, dlq_idless = count_ids(dl, ID_PAYLOAD)
    errs, dups = check_outputs(good, bad, idless, scores, dlq, dlq_idless, exact)
    nal = 0
    if alerts:
        al, _ = count_ids(alerts, ID_SCORE)
        nal = sum(al.values())
        with open(alerts, "rb") as f:
            not_block = sum(1 for l in f if l.strip() and b'"decision":"block"' not in l)
        if not_block or any(n > 1 for n in al.values()) or al.keys() - scores.keys():
            errs.append("alerts: %d not 'block', %d repeated, %d not among the scores" %
                        (not_block, sum(1 for n in al.values() if n > 1),
                         len(al.keys() - scores.keys())))
    return summary(errs, valid=len(good), invalid=len(bad) + idless, scores=sum(scores.values()),
                   dlq=sum(dlq.values()) + dlq_idless, duplicates=dups, alerts=nal)


def cmd_crash(args):
    inp, inmap, sc, dl, r1s, r1d, offsets, bound = args[:8]
    good, bad, idless = read_input(inp)
    scores, _ = count_ids(sc, ID_SCORE)
    dlq, dlq_idless = count_ids(dl, ID_PAYLOAD)
    errs, dups = check_outputs(good, bad, idless, scores, dlq, dlq_idless, False)
    where = {}  # id -> (partition, offset) in the input topic
    with open(inmap, "rb") as f:
        for line in f:
            p, o, payload = line.rstrip(b"\n").split(b" ", 2)
            m = ID_INPUT.search(payload)
            if m:
                where[m.group(1).decode()] = (int(p), int(o))
    committed = {}
    for kv in offsets.split():
        p, o = kv.split("=")
        committed[int(p)] = int(o)
    run1 = {}
    for path, rx in ((r1s, ID_SCORE), (r1d, ID_PAYLOAD)):
        c, _ = count_ids(path, rx)
        for k, n in c.items():
            run1[k] = run1.get(k, 0) + n
    # outputs of the first run for messages at or after the committed offset:
    # what the restart had to read again
    uncommitted = sum(n for k, n in run1.items()
                      if k in where and where[k][1] >= max(committed.get(where[k][0], -1), 0))
    dup_ids = {k for k, n in list(scores.items()) + list(dlq.items()) if n > 1}
    bad_dups = [k for k in dup_ids
                if k not in run1 or k not in where or
                where[k][1] < max(committed.get(where[k][0], -1), 0)]
    if bad_dups:
        errs.append("%d duplicates of messages committed before the kill (or never output "
                    "before it), e.g. %s" % (len(bad_dups), sorted(bad_dups)[:5]))
    if dups > uncommitted:
        errs.append("%d duplicates > %d outputs written but not committed at the kill" %
                    (dups, uncommitted))
    if dups > int(bound):
        errs.append("%d duplicates > the bound %s" % (dups, bound))
    return summary(errs, valid=len(good), invalid=len(bad) + idless, run1=sum(run1.values()),
                   committed=sum(max(v, 0) for v in committed.values()),
                   uncommitted_outputs=uncommitted, duplicates=dups, bound=bound)


def cmd_headers(args):
    errs, n = [], 0
    with open(args[0], "rb") as f:
        for line in f:
            if not line.strip():
                continue
            key, headers, value = line.rstrip(b"\n").split(b"\t", 2)
            rec = json.loads(value)
            n += 1
            if key.decode() != rec["key"] or ("id=" + rec["id"]).encode() not in headers.split(b","):
                errs.append("message key/headers %r/%r do not match the record %s" %
                            (key, headers, value[:80]))
                break
    if n == 0:
        errs.append("no messages")
    return summary(errs, messages=n)


if __name__ == "__main__":
    cmds = {"verify": cmd_verify, "crash": cmd_crash, "headers": cmd_headers}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(cmds[sys.argv[1]](sys.argv[2:]))
