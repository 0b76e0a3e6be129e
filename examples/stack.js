// A tiny stack: try `code-llama-ls complete examples/stack.js:8:5`.
class Stack {
  constructor() {
    this.items = [];
  }

  push(item) {
    
  }

  pop() {
    return this.items.pop();
  }
}

module.exports = { Stack };
