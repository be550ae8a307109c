import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from llm.crypto import SecretUnreadable, decrypt_secret, encrypt_secret, reencrypt_secret

PLAIN = "sk-live-0123456789abcdef"


def test_round_trip_hides_the_secret(settings):
    settings.LLM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    token = encrypt_secret(PLAIN)
    assert PLAIN not in token
    assert token != encrypt_secret(PLAIN)  # a fresh IV each time
    assert decrypt_secret(token) == PLAIN


def test_rotation_old_keys_still_decrypt_and_reencrypt_moves_to_the_new_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.LLM_ENCRYPTION_KEYS = [old]
    token = encrypt_secret(PLAIN)

    settings.LLM_ENCRYPTION_KEYS = [new, old]
    assert decrypt_secret(token) == PLAIN
    rotated = reencrypt_secret(token)

    settings.LLM_ENCRYPTION_KEYS = [new]
    assert decrypt_secret(rotated) == PLAIN
    with pytest.raises(SecretUnreadable):
        decrypt_secret(token)


def test_a_token_no_key_opens_is_unreadable(settings):
    settings.LLM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    token = encrypt_secret(PLAIN)
    settings.LLM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(SecretUnreadable, match="enter the API key again"):
        decrypt_secret(token)
    with pytest.raises(SecretUnreadable):
        decrypt_secret("not a token at all")


def test_without_configured_keys_the_key_comes_from_the_secret_key(settings):
    settings.LLM_ENCRYPTION_KEYS = []
    settings.SECRET_KEY = "first-secret-key-" + "x" * 40
    token = encrypt_secret(PLAIN)
    assert decrypt_secret(token) == PLAIN

    settings.SECRET_KEY = "second-secret-key-" + "y" * 40
    with pytest.raises(SecretUnreadable):
        decrypt_secret(token)


def test_a_malformed_configured_key_is_a_configuration_error(settings):
    settings.LLM_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="LLM_ENCRYPTION_KEYS"):
        encrypt_secret(PLAIN)
