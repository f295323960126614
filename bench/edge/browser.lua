-- A browser's request head, so the edge reads the headers a real page
-- load sends (bench/run-edge.sh).
wrk.method = "GET"
wrk.path = "/?q=shoes&page=2"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
wrk.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
wrk.headers["Accept-Language"] = "en-US,en;q=0.5"
wrk.headers["Accept-Encoding"] = "gzip, deflate, br"
wrk.headers["Referer"] = "https://example.com/products/shoes"
wrk.headers["Cookie"] = "session=ab12cd34ef56; theme=dark; cart_id=1004"
