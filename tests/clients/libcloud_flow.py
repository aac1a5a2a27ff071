"""apache-libcloud's CloudStack driver against a running `stratus serve` whose
zone was built by cs_flow.py: sizes, images, locations, create/list/reboot/
destroy a node. Environment: STRATUS_URL, STRATUS_KEY, STRATUS_SECRET (a user's keys).
"""

import os
import time
import urllib.parse

from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState, Provider

u = urllib.parse.urlparse(os.environ["STRATUS_URL"])
Driver = get_driver(Provider.CLOUDSTACK)
d = Driver(key=os.environ["STRATUS_KEY"], secret=os.environ["STRATUS_SECRET"], host=u.hostname, port=u.port,
           path=u.path, secure=False)


def step(msg):
    print(f"-- {msg}", flush=True)


step("locations, sizes, images")
locations = d.list_locations()
assert locations, "no zones"
size = next(s for s in d.list_sizes() if s.name == "cs-small")
image = next(i for i in d.list_images(location=locations[0]) if i.name == "cs-tiny")

step("create_node (async job polled by libcloud)")
node_name = f"lc-vm-{int(time.time())}"
node = d.create_node(name=node_name, size=size, image=image, location=locations[0])
assert node.name == node_name, node

step("libcloud creates with startvm=False: start it (ex_start), then list_nodes sees it running")
assert d.ex_start(node)
deadline = time.time() + 60
while True:
    nodes = {n.id: n for n in d.list_nodes()}
    if nodes[node.id].state == NodeState.RUNNING:
        break
    assert time.time() < deadline, nodes[node.id].state
    time.sleep(0.5)

step("reboot and destroy")
assert d.reboot_node(nodes[node.id])
assert d.destroy_node(nodes[node.id])
left = [n for n in d.list_nodes() if n.id == node.id]
assert not left or left[0].state in (NodeState.TERMINATED, NodeState.STOPPED, NodeState.UNKNOWN), left
print("libcloud flow: OK")
