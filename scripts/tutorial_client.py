#!/usr/bin/env python3
"""The Restb.ai tutorial's "simple rate limited client" (Part 3), rebuilt with
the standard library only, as the baseline restb is measured against.

Worker threads = allotted rps; each polls a queue (sleeping 1 s when it is
empty), calls the API, re-enqueues the job on 429 and sleeps 1/rps; the main
thread waits for queue.empty() and sends one poison pill per worker. Stats:
count, summed latency, first start, last end, printed in the tutorial's form.

Usage: tutorial_client.py BASE_URL [--rps 4] [--images 6]
(the key comes from RESTB_CLIENT_KEY, default "demo-key").
"""
import argparse
import json
import os
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

MODELS = ["re_roomtype_global_v2", "re_exterior_styles", "re_features_v4",
          "re_logo", "re_compliance_v2", "re_condition_r1r6_global"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("--rps", type=int, default=4)
    parser.add_argument("--images", type=int, default=6)
    args = parser.parse_args()
    key = os.environ.get("RESTB_CLIENT_KEY", "demo-key")
    jobs = queue.Queue()
    for n in range(1, args.images + 1):
        for model in MODELS:
            jobs.put((f"https://demo.restb.ai/images/demo/demo-{n}.jpg", model))
    lock = threading.Lock()
    stats = {"count": 0, "latency": 0.0, "first": None, "last": None, "429": 0}

    def worker():
        while True:
            try:
                item = jobs.get(block=False)
            except queue.Empty:
                time.sleep(1)
                continue
            if item is None:
                return
            url, model = item
            query = urllib.parse.urlencode(
                {"client_key": key, "model_id": model, "image_url": url})
            start = time.time()
            try:
                with urllib.request.urlopen(
                        f"{args.base_url}/vision/v2/predict?{query}", timeout=30) as resp:
                    json.loads(resp.read())
                    status = resp.status
            except urllib.error.HTTPError as error:
                error.read()
                status = error.code
            end = time.time()
            if status == 429:
                with lock:
                    stats["429"] += 1
                jobs.put(item)
                time.sleep(1 / args.rps)
                continue
            with lock:
                stats["count"] += 1
                stats["latency"] += end - start
                stats["first"] = start if stats["first"] is None else min(stats["first"], start)
                stats["last"] = end if stats["last"] is None else max(stats["last"], end)

    threads = [threading.Thread(target=worker) for _ in range(args.rps)]
    for thread in threads:
        thread.start()
    while not jobs.empty():
        time.sleep(1)
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join()
    count = stats["count"]
    span = (stats["last"] - stats["first"]) if count else 0.0
    average = (stats["latency"] / count * 1000) if count else 0.0
    throughput = (count / span) if span else 0.0
    print(f"[{count}] requests processed in [{span:.1f}] seconds with average time "
          f"[{average:.1f}] ms, total throughput: [{throughput:.2f}] rps")
    print(f"[{stats['429']}] rate-limited (429)")


if __name__ == "__main__":
    main()
