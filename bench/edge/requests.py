"""Sends N requests with the browser head of bench/edge/browser.lua over
one keep-alive connection and checks each answer is a 200.

    python3 bench/edge/requests.py PORT N
"""

import http.client
import sys

HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
    "Accept-Encoding": "gzip, deflate, br",
    "Referer": "https://example.com/products/shoes",
    "Cookie": "session=ab12cd34ef56; theme=dark; cart_id=1004",
}


def main() -> int:
    port, n = int(sys.argv[1]), int(sys.argv[2])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(n):
        conn.request("GET", "/?q=shoes&page=2", headers=HEADERS)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            print(f"status {resp.status}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
