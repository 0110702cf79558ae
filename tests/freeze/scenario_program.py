"""A stand-in program for the scenario runner's tests: MODE and what it does come from argv.

    publish TOPIC N PAYLOAD    publish N messages (QoS 1, acknowledged) and exit 0
    serve TOPIC REPLY_TOPIC    answer each message on TOPIC with "re:<payload>" until SIGTERM, then exit 0
    stubborn                   print "up" and ignore SIGTERM
    exit CODE TEXT             print TEXT and exit CODE
"""

import os
import signal
import sys
import threading

mode, *args = sys.argv[1:]
if mode == "exit":
    print(args[1])
    sys.exit(int(args[0]))
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("up", flush=True)
    threading.Event().wait(120)
    sys.exit(0)

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

client = mqtt.Client(CallbackAPIVersion.VERSION2)
client.connect(os.environ["BROKER_HOST"], int(os.environ["BROKER_PORT"]))
client.loop_start()
if mode == "publish":
    topic, count, payload = args[0], int(args[1]), args[2]
    for _ in range(count):
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    sys.exit(0)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
topic, reply_topic = args
client.on_message = lambda c, u, m: c.publish(reply_topic, b"re:" + m.payload, qos=1)
client.subscribe(topic, qos=1)
print("serving", flush=True)
stop.wait(120)
client.loop_stop()
print("stopped")
sys.exit(0)
