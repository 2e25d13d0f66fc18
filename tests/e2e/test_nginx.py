"""deploy/nginx.conf.template in front of a real gunicorn: Debian's nginx, rendered with envsubst as
the docs say, on loopback. Slow clients cannot stop the service, nginx's own errors are JSON, the
request id goes through, /metrics stays private, and SIGHUP reloads still work through it."""
import os
import re
import signal
import socket
import threading
import time

import pytest
import requests

from serving.config import Settings
from support import NGINX_BINARY, Nginx, Server, build_models, free_port, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX_BINARY),
                                reason="nginx is not installed (apt-get install nginx-light); CI installs it")


@pytest.fixture(scope="module")
def models(tiny_data, tmp_path_factory):
    """Models of the module's own, so a test may rebuild them."""
    return build_models(tiny_data / "train.tsv", tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def stack(models, tmp_path_factory):
    """(gunicorn, nginx in front of it), for the module."""
    gunicorn = Server(models).wait_healthy()
    proxy = Nginx(tmp_path_factory.mktemp("nginx"), upstream=f"127.0.0.1:{gunicorn.port}").wait_healthy()
    yield gunicorn, proxy
    proxy.stop()
    gunicorn.stop()


def trickle(port, stop, opened):
    """A slow client: a request line, then one header line every half second until `stop` is set."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /?query=slow HTTP/1.1\r\nHost: slow\r\n")
        opened.release()
        while not stop.wait(0.5):
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:  # nginx gave up on us: that is the point
                return


def test_two_hundred_slow_clients_do_not_delay_normal_requests_past_a_second(stack):
    gunicorn, proxy = stack
    stop, opened = threading.Event(), threading.Semaphore(0)
    clients = [threading.Thread(target=trickle, args=(proxy.port, stop, opened), daemon=True) for _ in range(200)]
    for client in clients:
        client.start()
    try:
        for _ in clients:
            assert opened.acquire(timeout=20), "a slow client could not connect"
        time.sleep(1.5)  # every slow client is now trickling its headers
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            answer = requests.get(proxy.url + "/", params={"query": "a superb film"}, timeout=5)
            timings.append(time.perf_counter() - started)
            assert answer.status_code == 200
        assert max(timings) < 1.0, timings
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=10)


@pytest.mark.parametrize("request_kwargs, status, advice", [
    ({"method": "POST", "url": "/", "data": b"x" * (Settings().MAX_CONTENT_LENGTH + 1),
      "headers": {"Content-Type": "application/json"}}, 413, "Send fewer or shorter texts"),
    ({"method": "GET", "url": "/?query=" + "a" * 5000}, 414, "Send long texts in the body"),
], ids=["oversized body", "over-long URL"])
def test_what_nginx_refuses_itself_is_json_with_advice_and_a_request_id(stack, request_kwargs, status, advice):
    _, proxy = stack
    kwargs = dict(request_kwargs, url=proxy.url + request_kwargs["url"])
    answer = requests.request(**kwargs, timeout=10)
    assert answer.status_code == status
    assert answer.headers["Content-Type"].startswith("application/json")
    assert advice in answer.json()["message"]
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"])


def test_the_templates_body_limit_is_the_apps(stack):
    _, proxy = stack
    size = re.search(r"client_max_body_size (\d+)m;", proxy.config.read_text()).group(1)
    assert int(size) * 1024 * 1024 == Settings().MAX_CONTENT_LENGTH


def test_the_callers_request_id_or_nginxs_own_reaches_the_app_and_comes_back(stack):
    gunicorn, proxy = stack
    given = requests.get(proxy.url + "/", params={"query": "fine"}, headers={"X-Request-ID": "trace-42"}, timeout=5)
    assert given.headers["X-Request-ID"] == "trace-42"
    made = requests.get(proxy.url + "/", params={"query": "fine"}, timeout=5).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert wait_for(lambda: f"id={made}" in gunicorn.output() and f"id={made}" in proxy.output(), timeout=5)


def test_the_access_line_shows_the_address_nginx_saw_not_its_own_nor_a_forged_one(stack):
    gunicorn, proxy = stack
    # The client comes from 127.0.0.2, nginx reaches gunicorn from 127.0.0.1; the client claims 203.0.113.9.
    with socket.create_connection(("127.0.0.1", proxy.port), source_address=("127.0.0.2", 0)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: address-check\r\n"
                     b"X-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    line = wait_for(lambda: next((x for x in gunicorn.output().splitlines() if "id=address-check" in x), None))
    assert line and line.endswith("client=127.0.0.2"), line


def test_metrics_are_not_served_on_the_public_listener(stack):
    gunicorn, proxy = stack
    public = requests.get(proxy.url + "/metrics", timeout=5)
    assert public.status_code == 404 and "No such endpoint" in public.json()["message"]
    assert requests.get(gunicorn.url + "/metrics", timeout=5).status_code == 200


def test_sighup_reloads_models_through_the_proxy(stack, models, tiny_data):
    gunicorn, proxy = stack

    def created():
        return {m["name"]: m["created_at"] for m in requests.get(proxy.url + "/models", timeout=5).json()["models"]}

    before = created()
    build_models(tiny_data / "train.tsv", models)
    gunicorn.process.send_signal(signal.SIGHUP)
    def all_newer():  # the workers' followers may switch the models one at a time before the reload does
        now = created()
        return all(now[name] > before[name] for name in before) and now

    assert wait_for(all_newer, timeout=30)
    assert requests.get(proxy.url + "/", params={"query": "a superb film"}, timeout=5).status_code == 200


def test_when_gunicorn_is_down_nginx_answers_503_json_saying_to_retry(models, tmp_path):
    proxy = Nginx(tmp_path / "nginx", upstream=f"127.0.0.1:{free_port()}")
    try:
        assert wait_for(lambda: proxy.process.poll() is None and _answers(proxy.url), timeout=10)
        answer = requests.get(proxy.url + "/", params={"query": "fine"}, timeout=10)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
        assert "Try again in a few seconds" in answer.json()["message"]
    finally:
        proxy.stop()


def _answers(url):
    """True once anything listens at `url`."""
    try:
        requests.get(url + "/health", timeout=1)
        return True
    except requests.ConnectionError:
        return False


@pytest.mark.parametrize("host, env, warned", [
    ("0.0.0.0", {}, True),
    ("0.0.0.0", {"FORWARDED_ALLOW_IPS": "127.0.0.1"}, False),
    ("127.0.0.1", {}, False),
], ids=["all interfaces, no proxy", "all interfaces, proxy declared", "loopback"])
def test_gunicorn_says_once_at_start_up_when_it_faces_a_network_alone(models, host, env, warned):
    server = Server(models, host=host, env=env)
    try:
        server.wait_healthy()
    finally:
        output = server.stop()
    lines = [line for line in output.splitlines() if "no proxy declared in front" in line]
    assert len(lines) == (1 if warned else 0), output
    if warned:
        assert "[WARNING]" in lines[0] and "docs/running.md" in lines[0]
