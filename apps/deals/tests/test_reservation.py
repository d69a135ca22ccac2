"""A reservation stays readable whatever version of the app stored it."""

from apps.deals.gate import Reservation


def test_a_field_this_version_does_not_know_is_left_out():
    stored = (
        '{"order_id":"o","item_id":"i","user_id":"u","quantity":2,'
        '"created_at":"2026-11-30T06:00:00+00:00","unit_price":100,"added_later":"x"}'
    )

    reservation = Reservation.from_json(stored)

    assert (reservation.order_id, reservation.quantity, reservation.subtotal) == ("o", 2, 200)
    assert Reservation.from_json(reservation.to_json()) == reservation
