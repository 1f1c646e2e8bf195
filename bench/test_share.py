"""How much of the top 10 is test code, for queries that ask for implementation, on a real repository.

Indexes requests 2.32.3 (its sdist: `src/requests` and a `tests/` folder about as large) with a model
folder (default: the shipped one) and asks QUERIES, each of which describes something `src/requests`
implements. For each first-stage configuration it prints the share of test chunks
(`server.search.tests_by_path.is_test_code`) in the top 10, over all queries, and the MRR and Recall@10 of
the definitions that answer each query. Rows: the dense order with tests ranked like any other (what search did before
the hybrid first stage), the default pipeline with `--tests`, and the default pipeline.

    python bench/test_share.py                       # the shipped model, requests 2.32.3
    python bench/test_share.py --model MODEL_DIR --threads 1
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from engine_speed import bench_config, fetch_package

from codesieve.server.search.tests_by_path import is_test_code
from codesieve.server.workspace import Workspace

PACKAGE = "requests==2.32.3"
TOP = 10
# Each query with the definitions in src/requests that answer it (qualified names).
QUERIES = {
    "retry a request when the connection fails": {"HTTPAdapter.send"},
    "merge session settings with request settings": {"merge_setting"},
    "parse a link header into a list of links": {"parse_header_links"},
    "get proxies from environment variables": {"get_environ_proxies"},
    "decode response content with the right encoding": {"Response.text"},
    "build the digest authentication header": {"HTTPDigestAuth.build_digest_header"},
    "follow redirects and rebuild the request": {"SessionRedirectMixin.resolve_redirects"},
    "iterate over the response body in chunks": {"Response.iter_content"},
    "check whether a url should bypass the proxy": {"should_bypass_proxies"},
    "encode a dictionary as form data for the request body": {"RequestEncodingMixin._encode_params"},
    "prepare cookies for a request": {"PreparedRequest.prepare_cookies"},
    "case insensitive dictionary for headers": {"CaseInsensitiveDict"},
    "verify ssl certificates with a ca bundle": {"HTTPAdapter.cert_verify"},
    "guess the filename of a file object": {"guess_filename"},
    "raise an error for a bad http status code": {"Response.raise_for_status"},
    "convert a dict of cookies to a cookie jar": {"cookiejar_from_dict"},
    "strip the authorization header when redirecting to another host": {
        "SessionRedirectMixin.rebuild_auth",
        "SessionRedirectMixin.should_strip_auth",
    },
    "encode files for a multipart upload": {"RequestEncodingMixin._encode_files"},
    "requote a url so it is properly escaped": {"requote_uri"},
    "get the netrc authentication for a host": {"get_netrc_auth"},
}


def measure(workspace: Workspace, lexical_weight: float, include_tests: bool) -> tuple[float, float, float]:
    """Over QUERIES: the share of test chunks in the top TOP, the answers' MRR and their Recall@TOP.

    An answer outside the first stage's candidates counts as rank infinity.
    """
    stage = workspace.cascade.first_stage
    stage.settings = replace(stage.settings, lexical_weight=lexical_weight)
    depth = workspace.config.retrieve_depth
    tests, reciprocal, found = 0, 0.0, 0
    for query, answers in QUERIES.items():
        hits = workspace.search(query, limit=depth, rerank=False, include_tests=include_tests).hits
        tests += sum(is_test_code(hit.chunk) for hit in hits[:TOP])
        ranks = [
            rank
            for rank, hit in enumerate(hits, 1)
            if hit.chunk.name in answers and not is_test_code(hit.chunk)
        ]
        if ranks:
            reciprocal += 1 / ranks[0]
            found += ranks[0] <= TOP
    return tests / (TOP * len(QUERIES)), reciprocal / len(QUERIES), found / len(QUERIES)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    args = parser.parse_args()
    folder = fetch_package(PACKAGE)
    workspace = Workspace(folder, bench_config("codesieve-test-share-", args.model, args.threads))
    report = workspace.sync()
    chunks = workspace.store.chunks_by_label(sorted(workspace.store.labels())).values()
    in_tests = sum(is_test_code(chunk) for chunk in chunks)
    weight = workspace.model.card.lexical_weight
    print(
        f"{PACKAGE}: {report.chunks_total} chunks, {in_tests} of them in test files; "
        f"{len(QUERIES)} implementation queries; model {workspace.model.card.name}, lexical weight {weight}"
    )
    print(f"| first stage | test share of the top {TOP} | answers' MRR | answers' R@{TOP} |")
    print("|---|---|---|---|")
    rows = [
        ("dense, tests ranked like any other (before)", 0.0, True),
        (f"hybrid w={weight}, tests ranked like any other (--tests)", weight, True),
        (f"hybrid w={weight}, tests after implementation (default)", weight, False),
    ]
    for name, lexical_weight, include_tests in rows:
        share, mrr, recall = measure(workspace, lexical_weight, include_tests)
        print(f"| {name} | {share:.1%} | {mrr:.3f} | {recall:.2f} |", flush=True)
    workspace.close()
    print("reproduce: python " + " ".join(shlex.quote(arg) for arg in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
