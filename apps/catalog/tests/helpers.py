"""Assertions shared by the catalog and deal tests."""


def assert_error(response, status: int, code: str, details=...) -> dict:
    """The response is the contract's error body with this status and code (and details)."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    assert body["message"]
    if details is not ...:
        assert body["details"] == details
    return body
