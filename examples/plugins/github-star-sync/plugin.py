# Captures a "GitHub Star" event, timestamped when the star was given, for every stargazer
# of a GitHub repository. Each minute it reads one page of stargazers; storage remembers the
# page and the newest star captured, so a star is captured once, and a snooze in the cache
# keeps it from asking GitHub again too soon.
# `fetch` and `posthog` are sandbox globals the server provides:
# ruff: noqa: F821
from datetime import UTC, datetime

PER_PAGE = 100
ACCEPT = "application/vnd.github.v3.star+json"
NAN = float("nan")


def github_headers(config):
    headers = {"Accept": ACCEPT}
    if config.get("token"):
        headers["Authorization"] = "token " + config["token"]
    return headers


def setup_plugin(meta):
    config = meta.config
    if not config.get("user") or not config.get("repo"):
        raise ValueError("Please set the 'user' or 'repo' config values")

    # later calls need the repository's numeric id; ask GitHub only when it is not known
    # for this user/repo yet
    project_cache = meta.storage.get("projectCache") or {}
    project_id = project_cache.get("projectId")
    if (
        project_id
        and project_cache.get("user") == config["user"]
        and project_cache.get("repo") == config["repo"]
    ):
        meta.global_["projectId"] = project_id
    else:
        url = "https://api.github.com/repos/" + config["user"] + "/" + config["repo"]
        body = fetch(url, headers=github_headers(config)).json()
        project_id = body.get("id") if isinstance(body, dict) else None
        meta.storage.set(
            "projectCache",
            {"projectId": project_id, "user": config["user"], "repo": config["repo"]},
        )
        meta.global_["projectId"] = project_id

    if config.get("resetStorage") == "Yes":
        meta.storage.delete("lastCapturedTime-" + str(meta.global_["projectId"]))
        meta.storage.delete("page-" + str(meta.global_["projectId"]))

    if not meta.global_["projectId"]:
        raise ValueError(
            "Could not get ID for Github project: " + config["user"] + "/" + config["repo"]
        )


def date_value(text):
    """Milliseconds since the epoch, NaN for no date (so every comparison is false)."""
    if not isinstance(text, str):
        return NAN
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return NAN
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() * 1000


def run_every_minute(meta):
    # GitHub's rate limit, or the last page was read a short while ago
    if meta.cache.get("snoozing", False):
        return

    project_id = str(meta.global_["projectId"])
    page = meta.storage.get("page-" + project_id, 1)
    url = (
        "https://api.github.com/repositories/"
        + project_id
        + "/stargazers?page="
        + str(page)
        + "&per_page="
        + str(PER_PAGE)
    )
    results = fetch(url, headers=github_headers(meta.config)).json()
    message = results.get("message") if isinstance(results, dict) else None
    if isinstance(message, str) and "rate limit" in message:
        meta.cache.set("snoozing", True, 600)
        return
    if not isinstance(results, list):
        raise TypeError("GitHub did not answer with a list of stargazers: " + str(results))

    last_captured_time = meta.storage.get("lastCapturedTime-" + project_id, None)
    if last_captured_time:
        limit = date_value(last_captured_time)
        valid_results = [r for r in results if date_value(r.get("starred_at")) > limit]
    else:
        valid_results = results
    dates = [r.get("starred_at") for r in valid_results]
    # the original sorts a missing date last, which leaves no newest time to store
    new_last_capture_time = sorted(dates)[-1] if dates and None not in dates else None

    for star in valid_results:
        user = star["user"]
        posthog.capture(
            meta.config.get("eventName") or "GitHub Star",
            {
                "timestamp": star.get("starred_at"),
                "repository": meta.config["user"] + "/" + meta.config["repo"],
                "starred_at": star.get("starred_at"),
                "user": user.get("login"),
                "user_id": user.get("id"),
                "user_url": user.get("url"),
                "avatar": user.get("avatar_url"),
            },
        )

    if new_last_capture_time and new_last_capture_time != last_captured_time:
        meta.storage.set("lastCapturedTime-" + project_id, new_last_capture_time)

    if len(results) == PER_PAGE:
        # a full page: the next call reads the next one
        meta.storage.set("page-" + project_id, page + 1)
    else:
        # the last, partial page: wait 5 minutes before asking for new stars again
        meta.cache.set("snoozing", True, 300)
