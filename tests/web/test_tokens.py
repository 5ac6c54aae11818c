"""web/tokens.py: the token a request presents, and when it is let through."""

from web.tokens import auth_headers, authorized, presented_token


def test_the_token_comes_as_a_bearer_header_or_a_query_parameter():
    assert presented_token({"Authorization": "Bearer s3cret"}, {}) == "s3cret"
    assert presented_token({"Authorization": "bearer s3cret"}, {"token": "other"}) == "s3cret"
    assert presented_token({}, {"token": "s3cret"}) == "s3cret"
    assert presented_token({"Authorization": "Basic abc"}, {}) is None
    assert auth_headers("s3cret") == {"Authorization": "Bearer s3cret"} and auth_headers("") == {}


def test_without_a_configured_token_everything_passes_and_with_one_only_that_token():
    assert authorized("", {}, {})
    assert authorized("s3cret", auth_headers("s3cret"), {})
    assert authorized("s3cret", {}, {"token": "s3cret"})
    assert not authorized("s3cret", {}, {})
    assert not authorized("s3cret", {"Authorization": "Bearer s3cre"}, {})
    assert not authorized("s3cret", {}, {"token": "S3CRET"})
