export * from "./math";
export * from "./position";
export * from "./funding";
export * from "./orders";
export * from "./matching";
export * from "./local";
export * from "./score";
export * from "./rank-tree";
