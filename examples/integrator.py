#!/usr/bin/env python3
"""A bank back office's day on Cessio's API, with nothing but the OpenAPI document's
operations and the Python standard library:

1. sign in with username and password once, and take a token for the program;
2. page through the communications and cessions awaiting the bank's answer (F4, a page at
   a time: `limit`, then the `Link` header's next page);
3. answer them by their codici univoci as a bulk job (F3 by a list), which is taken at
   once and followed to its end; the same list sent again before the job ends is the same
   job, so running the script again after a lost response applies nothing twice;
4. print each row's outcome, read page by page;
5. wait on the bank's events feed for what its answer registered, from the cursor it took
   before answering (a program that runs all day keeps that cursor between runs);
6. download the PDF receipt of each operation the job made, for the bank's files.

    python3 examples/integrator.py --base http://127.0.0.1:8080 \\
        --username banca --password cessio-demo-2024 --pin 246810 \\
        --party 03189950961 --type superbonus --accept
"""

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request


def call(base, method, path, body=None, token=None, cookie=None, key=None, raw=False):
    """One request; returns (status, headers, decoded JSON or None, or the bytes if raw)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if cookie:
        req.add_header("Cookie", cookie)
    if key:
        req.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(req) as r:
            data = r.read()
            if raw:
                return r.status, r.headers, data
            return r.status, r.headers, json.loads(data) if data else None
    except urllib.error.HTTPError as e:
        problem = json.loads(e.read() or b"null")
        sys.exit(f"{method} {path}: {e.code} {problem and problem.get('code')}: "
                 f"{problem and problem.get('detail')}")


def next_page(headers):
    """The target of `Link: <…>; rel="next"`, if any (RFC 8288)."""
    m = re.match(r'<([^>]+)>;\s*rel="next"', headers.get("Link") or "")
    return m.group(1) if m else None


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--base", required=True, help="http://host:port")
    a.add_argument("--username", required=True)
    a.add_argument("--password", required=True)
    a.add_argument("--pin", required=True)
    a.add_argument("--party", required=True, help="the bank's codice fiscale")
    a.add_argument("--type", help="only this credit type (e.g. superbonus)")
    a.add_argument("--limit", type=int, default=100, help="rows per page")
    a.add_argument("--receipt-dir", help="where to save the answer's PDF receipt")
    answer = a.add_mutually_exclusive_group(required=True)
    answer.add_argument("--accept", action="store_true")
    answer.add_argument("--refuse", action="store_true")
    args = a.parse_args()

    # 1. A token for the program (shown once), from one password sign-in.
    _, headers, _ = call(args.base, "POST", "/api/v1/session",
                         {"username": args.username, "password": args.password})
    cookie = headers.get("Set-Cookie", "").split(";")[0]
    _, _, created = call(args.base, "POST", "/api/v1/tokens", {"name": "integrator"}, cookie=cookie)
    token = created["token"]

    # Where the bank's events stand now: what the answer below registers comes after it.
    _, _, start = call(args.base, "GET", f"/api/v1/parties/{args.party}/events?after=end", token=token)
    cursor = start["after"]

    # 2. Everything awaiting the bank's answer, page by page.
    query = f"cessionario_cf={args.party}&state=in_attesa&limit={args.limit}"
    if args.type:
        query += f"&type_key={args.type}"
    path = f"/api/v1/parties/{args.party}/movements?{query}"
    codes, pages = [], 0
    while path:
        _, headers, rows = call(args.base, "GET", path, token=token)
        pages += 1
        codes += [r["codice_univoco"] for r in rows]
        path = next_page(headers)
    print(f"in attesa di risposta: {len(codes)} operazioni in {pages} pagine")
    if not codes:
        return

    # 3. One answer for all of them, as a bulk job: it is taken at once and goes on by
    #    itself. The same list sent again before the job ends is the same job, so a retry
    #    after a lost response applies nothing twice.
    accept = bool(args.accept)
    _, _, job = call(args.base, "POST", f"/api/v1/parties/{args.party}/incoming/answer-jobs",
                     {"accept": accept, "codes": codes, "pin": args.pin}, token=token)
    while job["state"] in ("queued", "running"):
        time.sleep(0.2)
        _, _, job = call(args.base, "GET", f"/api/v1/jobs/{job['id']}", token=token)
    if job["state"] != "done":
        sys.exit(f"il lavoro {job['id']} si è fermato: {job['error']}")

    # 4. Each row's outcome, page by page.
    rows, path = [], f"/api/v1/jobs/{job['id']}/rows?limit=1000"
    while path:
        _, headers, page = call(args.base, "GET", path, token=token)
        rows += page
        path = next_page(headers)
    operations = sorted({r["operation_id"] for r in rows if r["operation_id"] is not None})
    answered = sum(r["operations"] for r in rows if not r["error"])
    amount = sum(r["amount"] for r in rows if not r["error"])
    verb = "accettate" if accept else "rifiutate"
    print(f"{verb}: {answered} operazioni, {amount / 100:.2f} euro "
          f"(lavoro {job['id']}, {job['total_rows']} righe, operazioni {operations})")
    for row in rows:
        if row["error"]:
            print(f"  riga {row['line']} {row['code']}: {row['error']['code']}: {row['error']['message']}")

    # 5. The events the answer registered, waiting up to 10 s for each read's first one.
    outcome = "accepted" if accept else "refused"
    told = 0
    while told < answered:
        _, _, page = call(args.base, "GET",
                          f"/api/v1/parties/{args.party}/events?after={cursor}&limit=1000&wait=10",
                          token=token)
        if not page["events"]:
            break
        told += sum(1 for e in page["events"] if e["type"].endswith("_" + outcome))
        cursor = page["after"]
    print(f"eventi: {told} risposte registrate ({outcome})")

    # 6. The answer's receipts (one per operation the job made), as the bank files them.
    if args.receipt_dir:
        for operation in operations:
            _, headers, pdf = call(args.base, "GET",
                                   f"/api/v1/parties/{args.party}/operations/{operation}/receipt.pdf",
                                   token=token, raw=True)
            path = os.path.join(args.receipt_dir, f"ricevuta-{operation}.pdf")
            with open(path, "wb") as f:
                f.write(pdf)
            print(f"ricevuta: {path} ({headers.get('Content-Type')}, {len(pdf)} byte)")


if __name__ == "__main__":
    main()
