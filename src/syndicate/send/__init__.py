"""Sending an edition, in one home: the plan of a send and the processes that carry it out.

plan wires an edition, its subscribers' links and delivery into one send; processes runs a
send in one process or several (started by the worker processes it is given), each sending a
part; batches cuts an edition's audience into subscriber id ranges and sends one (a worker's
job, when workers share the send); confirmation mails a new subscriber's confirmation link.
Where digests, subscribers and delivery meet: may import those, the store, workers and the
leaves; never the web, the schedule or the command line.
"""
