"""A real WordPress for tests: Debian's ``wordpress`` package, served by ``php -S`` on loopback.

``missing()`` says what is absent (the package, PHP's CLI and MySQL driver, MariaDB on
127.0.0.1:3306 with ``root`` and no password, a writable ``/etc/wordpress``), or "" when a site can
be made. ``real_wordpress(tmp)`` then makes a fresh one and removes it afterwards:

1. a new database (``CREATE DATABASE``, through PHP's mysqli: nothing else to install);
2. the Debian configuration ``/etc/wordpress/config-<name>.php`` (README.Debian: the package's
   ``wp-config.php`` loads ``config-$WORDPRESS_CONFIG.php`` when the server sets that variable;
   our router sets it, so two sites can run at once), with ``WP_ENVIRONMENT_TYPE`` ``local``
   (application passwords without HTTPS: ``wp_is_application_passwords_supported``), the site's
   own ``wp-content`` under ``tmp``, no cron and no outside HTTP;
3. ``php -S 127.0.0.1:<port>`` with a router: ``/wp-content/…`` from that folder, PHP files
   and static files from ``/usr/share/wordpress``, anything else to ``index.php`` (pretty
   permalinks, so ``/wp-json/`` works as on a real host);
4. the installation (``POST wp-admin/install.php?step=2``), permalinks ``/%postname%/``;
5. an Editor with an application password, made as the documented way for a logged-in
   administrator: log in (``wp-login.php``), take a REST nonce
   (``admin-ajax.php?action=rest-nonce``), ``POST /wp/v2/users`` and
   ``POST /wp/v2/users/<id>/application-passwords``.

Teardown stops php (by its pid), drops the database and removes the configuration file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path("/usr/share/wordpress")
CONFIGS = Path("/etc/wordpress")
DB_HOST, DB_PORT = "127.0.0.1", 3306
EDITOR = "bientap"

ROUTER = r"""<?php
// php -S router: one WordPress site (its Debian configuration named below).
$_SERVER['WORDPRESS_CONFIG'] = '%(config)s';
$root = '%(root)s';
$content = '%(content)s';
$path = rawurldecode(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH));
if (strpos($path, '..') !== false) { http_response_code(400); return true; }
$types = ['jpg' => 'image/jpeg', 'jpeg' => 'image/jpeg', 'png' => 'image/png',
          'css' => 'text/css', 'js' => 'text/javascript', 'svg' => 'image/svg+xml',
          'woff2' => 'font/woff2', 'json' => 'application/json'];
if (strncmp($path, '/wp-content/', 12) === 0) {
    $file = $content . substr($path, 11);
    if (!is_file($file)) { http_response_code(404); return true; }
    $ext = strtolower(pathinfo($file, PATHINFO_EXTENSION));
    header('Content-Type: ' . ($types[$ext] ?? 'application/octet-stream'));
    header('Content-Length: ' . filesize($file));
    readfile($file);
    return true;
}
$file = $root . $path;
if (is_dir($file)) { $file = rtrim($file, '/') . '/index.php'; }
if (substr($file, -4) !== '.php' && is_file($file)) { return false; }
if (!is_file($file)) { $file = $root . '/index.php'; }
$_SERVER['SCRIPT_FILENAME'] = $file;
$_SERVER['SCRIPT_NAME'] = $_SERVER['PHP_SELF'] = substr($file, strlen($root));
chdir(dirname($file));
require $file;
return true;
"""

CONFIG = """<?php
// A throw-away site for publisher's tests (tests/real_wordpress.py); removed after the test.
define('DB_NAME', '%(db)s');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', '%(db_host)s:%(db_port)d');
define('WP_HOME', '%(url)s');
define('WP_SITEURL', '%(url)s');
define('WP_CONTENT_DIR', '%(content)s');
define('WP_CONTENT_URL', '%(url)s/wp-content');
define('WP_ENVIRONMENT_TYPE', 'local');
define('DISABLE_WP_CRON', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_ALLOW_MULTISITE', false);
%(salts)s
$table_prefix = 'wp_';
"""

SALTS = ("AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY")
SALTS += ("AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT")


@dataclass
class Site:
    """A running site: its URL and an Editor's application password."""

    url: str
    editor: str
    password: str  # the Editor's application password (24 characters, in groups of 4)
    log: Path  # php's own log

    def api(self, timeout: float = 30.0) -> httpx.Client:
        """A client logged in as the Editor, based at ``/wp-json/wp/v2``."""
        return httpx.Client(
            base_url=f"{self.url}/wp-json/wp/v2",
            auth=httpx.BasicAuth(self.editor, self.password),
            timeout=timeout,
        )


def _php(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["php", "-r", code, "--", *args], capture_output=True, text=True, timeout=60, check=False
    )


def _sql(*statements: str, db: str = "") -> None:
    """Run statements on MariaDB as root, in database ``db`` if given (through PHP's mysqli:
    php-mysql is what WordPress needs anyway)."""
    code = (
        f"$m = new mysqli('{DB_HOST}', 'root', '', $argv[1] ?: null, {DB_PORT});"
        "foreach (array_slice($argv, 2) as $q) {"
        " if (!$m->query($q)) { fwrite(STDERR, $m->error); exit(1); } }"
    )
    out = _php(code, db, *statements)
    if out.returncode != 0:
        raise RuntimeError(f"MariaDB refused {statements}: {out.stderr.strip()}")


def missing() -> str:
    """What keeps a real WordPress from running here, or "" when nothing does."""
    if not (ROOT / "wp-config.php").is_file():
        return "Debian's wordpress package is not installed (apt-get install wordpress)"
    if shutil.which("php") is None:
        return "php is not installed (apt-get install php-cli)"
    probe = _php("exit(extension_loaded('mysqli') ? 0 : 1);")
    if probe.returncode != 0:
        return "PHP's MySQL driver is missing (apt-get install php-mysql)"
    try:
        socket.create_connection((DB_HOST, DB_PORT), timeout=2).close()
    except OSError:
        return f"no MariaDB answers on {DB_HOST}:{DB_PORT}"
    try:
        _sql("SELECT 1")
    except RuntimeError as exc:
        return f"MariaDB does not let root in without a password: {exc}"
    if not CONFIGS.is_dir() or not _writable(CONFIGS):
        return f"{CONFIGS} is not writable by this user (the Debian configuration lives there)"
    return ""


def _writable(folder: Path) -> bool:
    probe = folder / f".publisher-probe-{secrets.token_hex(4)}"
    try:
        probe.touch()
    except OSError:
        return False
    probe.unlink()
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"php -S exited: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"php -S did not listen on {port} within 15 s")


@contextlib.contextmanager
def real_wordpress(tmp: Path) -> Iterator[Site]:
    """A fresh site (see the module's docstring), removed on exit."""
    name = f"publishertest-{secrets.token_hex(4)}"
    db = f"publisher_wp_{secrets.token_hex(4)}"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    content = tmp / "wp-content"
    (content / "uploads").mkdir(parents=True)
    for part in ("themes", "plugins", "languages"):
        (content / part).symlink_to(ROOT / "wp-content" / part)
    config = CONFIGS / f"config-{name}.php"
    salts = "\n".join(f"define('{k}', '{secrets.token_hex(32)}');" for k in SALTS)
    params = {"db": db, "db_host": DB_HOST, "db_port": DB_PORT, "url": url}
    router = tmp / "router.php"
    router.write_text(ROUTER % {"config": name, "root": ROOT, "content": content})
    log = tmp / "php.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        config.write_text(CONFIG % {**params, "content": content, "salts": salts})
        _sql(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["php", "-S", f"127.0.0.1:{port}", "-t", str(ROOT), str(router)],
                cwd=tmp,
                # Workers: WordPress calls itself while installing (to test permalinks).
                env={**os.environ, "PHP_CLI_SERVER_WORKERS": "4"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the workers stop with it
            )
        _wait_listening(port, proc, log)
        yield _install(url, db, log)
    finally:
        if proc is not None:
            _stop(proc)
        with contextlib.suppress(RuntimeError):
            _sql(f"DROP DATABASE IF EXISTS `{db}`")
        config.unlink(missing_ok=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop php and its workers (the process group it leads, by its id)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def _install(url: str, db: str, log: Path) -> Site:
    """Install the site, turn on pretty permalinks, and make an Editor with an application
    password (as an administrator logged in with a cookie does it)."""
    admin_password = secrets.token_urlsafe(18)
    with httpx.Client(base_url=url, timeout=60.0, follow_redirects=False) as web:
        done = web.post(
            "/wp-admin/install.php",
            params={"step": "2"},
            data={
                "weblog_title": "Cổng thông tin điện tử Sở Tư pháp (thử nghiệm)",
                "user_name": "quantri",
                "admin_password": admin_password,
                "admin_password2": admin_password,
                "pw_weak": "1",
                "admin_email": "quantri@example.org",
                "blog_public": "0",
                "language": "",
            },
        )
        if done.status_code != 200 or "wp-login.php" not in done.text:
            raise RuntimeError(f"the installation failed ({done.status_code}): {done.text[:500]}")
        _sql(
            "UPDATE wp_options SET option_value = '/%postname%/' "
            "WHERE option_name = 'permalink_structure'",
            "UPDATE wp_options SET option_value = '' WHERE option_name = 'rewrite_rules'",
            db=db,
        )
        web.get("/wp-login.php")  # sets WordPress's test cookie
        login = web.post(
            "/wp-login.php",
            data={"log": "quantri", "pwd": admin_password, "testcookie": "1", "rememberme": ""},
        )
        if login.status_code != 302:
            raise RuntimeError(f"the administrator could not log in ({login.status_code})")
        nonce = web.get("/wp-admin/admin-ajax.php", params={"action": "rest-nonce"}).text.strip()
        rest = {"X-WP-Nonce": nonce}
        user = web.post(
            "/wp-json/wp/v2/users",
            headers=rest,
            json={
                "username": EDITOR,
                "email": "bientap@example.org",
                "password": secrets.token_urlsafe(18),
                "name": "Ban biên tập",
                "roles": ["editor"],
            },
        )
        if user.status_code != 201:
            raise RuntimeError(f"the Editor was not created ({user.status_code}): {user.text}")
        made = web.post(
            f"/wp-json/wp/v2/users/{user.json()['id']}/application-passwords",
            headers=rest,
            json={"name": "publisher (tests)"},
        )
        if made.status_code != 201:
            raise RuntimeError(f"no application password ({made.status_code}): {made.text}")
    return Site(url, EDITOR, str(made.json()["password"]), log)
