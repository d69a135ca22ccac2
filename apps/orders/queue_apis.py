"""The waiting room's endpoints (docs/catalog-and-deals.md): join a deal's line, read or give up
the ticket. One Redis round trip each and no PostgreSQL (apps.deals.gate.room), except when
the deal's state has to be rebuilt."""

import uuid
from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import ErrorCode
from apps.core.ratelimit import queue_join_limit
from apps.core.renderers import iso
from apps.core.schema import error_response
from apps.deals.gate import Ticket, TicketState

from .services.queue import queue_join, queue_leave, queue_ticket


class TicketOutputSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=[s.value for s in TicketState])
    position = serializers.IntegerField(
        allow_null=True,
        help_text="1-based place in line; null before the start (the pre-queue's order is "
        "drawn at the start) and once the ticket is not waiting; 0 when admitted",
    )
    waiting = serializers.IntegerField(help_text="Shoppers in line now")
    estimated_wait_s = serializers.IntegerField(
        allow_null=True, help_text="Seconds until admission at the room's rate (a lower bound)"
    )
    poll_after_s = serializers.IntegerField(
        allow_null=True, help_text="Poll the ticket again after this many seconds"
    )
    admission = serializers.CharField(
        allow_null=True,
        help_text="When admitted: send it as the `Admission` header of the purchase",
    )
    admission_expires_at = serializers.DateTimeField(allow_null=True)


def ticket_body(ticket: Ticket) -> dict:
    expires = ticket.admission_expires_at_ms
    return {
        "state": ticket.state.value,
        "position": ticket.position,
        "waiting": ticket.waiting,
        "estimated_wait_s": ticket.estimated_wait_s,
        "poll_after_s": ticket.poll_after_s,
        "admission": ticket.admission,
        "admission_expires_at": iso(datetime.fromtimestamp(expires / 1000, UTC))
        if expires
        else None,
    }


class QueueJoinApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["waiting room"],
        operation_id="deal_queue_join",
        request=None,
        description="Take a place in the deal's waiting room (idempotent: joining again returns "
        "the place held). Poll `GET .../queue/me` every `poll_after_s` until `state` is "
        "`admitted`, then buy with the `Admission` header.",
        responses={
            200: TicketOutputSerializer,
            201: TicketOutputSerializer,
            400: error_response(
                ErrorCode.DEAL_NOT_ACTIVE, ErrorCode.DEAL_SOLD_OUT, ErrorCode.QUEUE_NOT_OPEN
            ),
            404: error_response(ErrorCode.NOT_FOUND),
            429: error_response(ErrorCode.RATE_LIMITED, note="+ Retry-After"),
        },
    )
    def post(self, request, deal_id: uuid.UUID):
        queue_join_limit(request)
        ticket = queue_join(user_id=request.user.pk, deal_id=deal_id)
        code = status.HTTP_201_CREATED if ticket.created else status.HTTP_200_OK
        return Response(ticket_body(ticket), status=code)


class QueueTicketApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=["waiting room"],
        operation_id="deal_queue_ticket",
        responses={200: TicketOutputSerializer, 404: error_response(ErrorCode.NOT_QUEUED)},
    )
    def get(self, request, deal_id: uuid.UUID):
        return Response(ticket_body(queue_ticket(user_id=request.user.pk, deal_id=deal_id)))

    @extend_schema(
        tags=["waiting room"],
        operation_id="deal_queue_leave",
        description="Give up the place (or the admission): the slot goes to the next in line.",
        responses={204: None, 404: error_response(ErrorCode.NOT_QUEUED)},
    )
    def delete(self, request, deal_id: uuid.UUID):
        queue_leave(user_id=request.user.pk, deal_id=deal_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
