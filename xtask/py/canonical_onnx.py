"""Make a converted ONNX file byte-stable.

tf2onnx 1.17 numbers folded constants and generated dimensions from counters
whose order depends on set iteration inside the converter, so two conversions
of the same TF.js model differ in names (and initializer order) while being
the same graph. Here every name that is not a graph input or output is
replaced by one derived from its first use in node order, initializers are
ordered by that name, intermediate value_info is dropped, unknown batch
dimensions are called "N", and the free-text doc strings are fixed.
"""

import onnx


def canonicalize(model: onnx.ModelProto, doc: str) -> onnx.ModelProto:
    graph = model.graph
    keep = {v.name for v in graph.output}
    inits = {t.name: t for t in graph.initializer}
    keep |= {v.name for v in graph.input if v.name not in inits}
    renamed: dict[str, str] = {}

    def rename(name: str, prefix: str) -> str:
        if not name or name in keep:
            return name
        if name not in renamed:
            renamed[name] = f"{prefix}{len(renamed)}"
        return renamed[name]

    for index, node in enumerate(graph.node):
        for i, name in enumerate(node.input):
            node.input[i] = rename(name, "w" if name in inits else "t")
        for i, name in enumerate(node.output):
            node.output[i] = rename(name, "t")
        node.name = f"{node.op_type.lower()}_{index}"
        node.doc_string = ""
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                raise ValueError("subgraphs are not expected in these models")

    used = [t for t in graph.initializer if t.name in renamed]
    for t in used:
        t.name = renamed[t.name]
    used.sort(key=lambda t: int(t.name[1:]))
    del graph.initializer[:]
    graph.initializer.extend(used)

    real_inputs = [v for v in graph.input if v.name not in inits]
    del graph.input[:]
    graph.input.extend(real_inputs)
    del graph.value_info[:]

    for v in list(graph.input) + list(graph.output):
        for dim in v.type.tensor_type.shape.dim:
            if dim.dim_param.startswith("unk__"):
                dim.dim_param = "N"

    graph.name = "main"
    graph.doc_string = ""
    model.doc_string = doc
    return model
