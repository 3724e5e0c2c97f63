"""MQTT 5 PUBLISH properties travel unaltered from publisher to subscriber."""

from __future__ import annotations

from roost_interop import V5, publish_properties, unique


def forward(broker, clients, **properties):
    """Publishes one QoS 1 message with `properties` and returns what the subscriber got."""
    topic = f"roost-it/{unique('props')}/data"
    subscriber = clients(broker, version=V5)
    subscriber.connect()
    subscriber.subscribe(topic, 1)
    publisher = clients(broker, version=V5)
    publisher.connect()
    publisher.publish(topic, b"payload", qos=1, properties=publish_properties(**properties))
    message = subscriber.expect_message()
    assert message.payload == b"payload"
    return message


def test_v5_mqtt_3_3_2_17_v5_mqtt_3_3_2_18_user_properties_forwarded_in_order(broker, clients):
    # Repeated names and a non-sorted order: both must survive.
    user_properties = [("trace", "1"), ("b", "x"), ("a", "y"), ("trace", "2"), ("émoji", "✓")]
    message = forward(broker, clients, UserProperty=user_properties)
    assert message.properties.UserProperty == user_properties


def test_v5_mqtt_3_3_2_15_response_topic_forwarded_unaltered(broker, clients):
    message = forward(broker, clients, ResponseTopic="replies/Client-7/ÄÖ")
    assert message.properties.ResponseTopic == "replies/Client-7/ÄÖ"


def test_v5_mqtt_3_3_2_16_correlation_data_forwarded_unaltered(broker, clients):
    data = bytes(range(256))
    message = forward(broker, clients, CorrelationData=data)
    assert message.properties.CorrelationData == data


def test_v5_mqtt_3_3_2_20_content_type_forwarded_unaltered(broker, clients):
    message = forward(broker, clients, ContentType="application/json; charset=utf-8")
    assert message.properties.ContentType == "application/json; charset=utf-8"


def test_v5_mqtt_3_3_2_4_payload_format_indicator_forwarded_unaltered(broker, clients):
    message = forward(broker, clients, PayloadFormatIndicator=1)
    assert message.properties.PayloadFormatIndicator == 1


def test_v5_mqtt_3_3_2_6_message_expiry_interval_forwarded_minus_waiting_time(broker, clients):
    message = forward(broker, clients, MessageExpiryInterval=120)
    expiry = message.properties.MessageExpiryInterval
    # Delivered at once: the broker subtracts the (near zero) time it held the message.
    assert 110 <= expiry <= 120, f"Message Expiry Interval {expiry}"


def test_v5_request_response_round_trip(broker, clients):
    """A requester and a responder talk through Response Topic and Correlation Data."""
    base = f"roost-it/{unique('rpc')}"
    responder = clients(broker, version=V5)
    responder.connect()
    responder.subscribe(f"{base}/requests", 1)
    requester = clients(broker, version=V5)
    requester.connect()
    requester.subscribe(f"{base}/replies", 1)
    requester.publish(
        f"{base}/requests",
        b"ping",
        qos=1,
        properties=publish_properties(ResponseTopic=f"{base}/replies", CorrelationData=b"req-42"),
    )
    request = responder.expect_message()
    responder.publish(
        request.properties.ResponseTopic,
        b"pong",
        qos=1,
        properties=publish_properties(CorrelationData=request.properties.CorrelationData),
    )
    reply = requester.expect_message()
    assert (reply.payload, reply.properties.CorrelationData) == (b"pong", b"req-42")
